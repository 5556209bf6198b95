// ChaosBlade's Response JSON:
//   {"code": <int>, "success": <bool>, "error": "...", "result": ...}
// with `error` omitted when empty and `result` omitted when null (as Go's
// omitempty did), and the one mapping from blade::Error to its codes. The
// compatibility routes answer it; `blade -o chaosblade` prints it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "blade/core/model/error.hpp"

namespace blade {

// The codes of ChaosBlade that Blade answers.
namespace chaosblade {
inline constexpr int kOk = 200;
inline constexpr int kForbidden = 43000;
inline constexpr int kActionNotSupport = 44000;
inline constexpr int kParameterLess = 45000;
inline constexpr int kParameterIllegal = 46000;
inline constexpr int kParameterInvalid = 47000;
inline constexpr int kCommandIllegal = 49000;
inline constexpr int kUnexpectedStatus = 54000;
inline constexpr int kOsCmdExecFailed = 63063;
inline constexpr int kDatabaseError = 67001;
inline constexpr int kDataNotFound = 67002;
}  // namespace chaosblade

struct ChaosbladeResponse {
  int code = chaosblade::kOk;
  bool success = true;
  std::string error;
  nlohmann::json result;  // null: omitted
};

nlohmann::json to_json(const ChaosbladeResponse &response);

// ChaosBlade's code for a Blade error; see the table in the .cpp.
int chaosblade_code(const Error &error);

ChaosbladeResponse chaosblade_ok(nlohmann::json result);
// `result` is what success would have answered, when there is one (the uid
// of an experiment that failed), so the caller can still find the record.
ChaosbladeResponse chaosblade_failure(const Error &error, nlohmann::json result = nullptr);

}  // namespace blade
