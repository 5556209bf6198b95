#include "counter_reporter.hpp"

#include <future>
#include <mutex>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace blade::http {

namespace asio = boost::asio;

// Lives on its own strand; the timer's handler keeps it alive until the
// timer is cancelled and the handler has seen that.
struct CounterReporter::Loop : std::enable_shared_from_this<Loop> {
  asio::strand<asio::io_context::executor_type> strand;
  asio::steady_timer timer;
  std::shared_ptr<const FaultEngine> engine;
  Report report;
  std::chrono::milliseconds period;
  std::string last;
  bool stopped = false;

  Loop(asio::io_context &io, std::shared_ptr<const FaultEngine> e, Report r,
       std::chrono::milliseconds p)
      : strand(asio::make_strand(io)), timer(strand), engine(std::move(e)), report(std::move(r)),
        period(p) {}

  void tick() {
    if (stopped) return;
    std::string now = engine->counters_json().dump();
    if (now != last) {
      report(now);
      last = std::move(now);
    }
    timer.expires_after(period);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code &ec) {
      if (!ec) self->tick();
    });
  }
};

CounterReporter::CounterReporter(asio::io_context &io, std::shared_ptr<const FaultEngine> engine,
                                 Report report, std::chrono::milliseconds period)
    : loop_(std::make_shared<Loop>(io, std::move(engine), std::move(report), period)) {
  asio::dispatch(loop_->strand, [loop = loop_] { loop->tick(); });
}

CounterReporter::~CounterReporter() {
  // Stopped on the strand and waited for: no report runs after this.
  std::promise<void> done;
  asio::dispatch(loop_->strand, [loop = loop_, &done] {
    loop->stopped = true;
    loop->timer.cancel();
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace blade::http
