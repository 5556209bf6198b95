#!/usr/bin/env python3
"""Writes an OCI image layout tarball of a busybox rootfs, with no network.

usage: make_oci_image.py BUSYBOX OUT.tar REF VICTIM

BUSYBOX is a statically linked busybox (Debian's busybox-static); REF names
the image (index.json's org.opencontainers.image.ref.name annotation, which
`ctr image import` takes as the image name); VICTIM is the absolute path of
a small file the image holds for the file faults to act on. The tarball holds oci-layout,
index.json and blobs/sha256/<digest> for the layer (an uncompressed tar, so
its diff_id is its own digest), the image config and the manifest.

Every entry has mtime 0, uid/gid 0 and a fixed order, so the same busybox
gives the same bytes (and digests) on every run.
"""

import hashlib
import io
import json
import sys
import tarfile

# The applets the containerd tests run inside the container (sleep as the
# workload, sh and friends for a person looking inside).
APPLETS = ["cat", "echo", "kill", "ls", "ps", "rm", "sh", "sleep", "touch"]


def entry(name, kind, mode, data=b"", link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.size = len(data)
    info.linkname = link
    return info, io.BytesIO(data) if data else None


def tar_bytes(entries):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, body in entries:
            tar.addfile(info, body)
    return out.getvalue()


def layer(busybox, victim):
    with open(busybox, "rb") as f:
        binary = f.read()
    dirs = ["bin", "dev", "etc", "proc", "root", "srv", "sys"]
    parent = victim.strip("/").rpartition("/")[0]
    while parent and parent not in dirs:  # the victim's dirs, parents first
        dirs.append(parent)
        parent = parent.rpartition("/")[0]
    entries = [entry(d, tarfile.DIRTYPE, 0o755) for d in sorted(dirs)]
    entries.append(entry("tmp", tarfile.DIRTYPE, 0o1777))
    entries.append(entry("bin/busybox", tarfile.REGTYPE, 0o755, binary))
    entries += [entry("bin/" + a, tarfile.SYMTYPE, 0o777, link="busybox") for a in APPLETS]
    entries.append(entry("etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\n"))
    entries.append(entry("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\n"))
    entries.append(entry(victim.lstrip("/"), tarfile.REGTYPE, 0o644, b"blade containerd test victim\n"))
    return tar_bytes(entries)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def descriptor(media_type, data):
    return {"mediaType": media_type,
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data)}


def main():
    busybox, out, ref, victim = sys.argv[1:5]
    layer_tar = layer(busybox, victim)
    layer_desc = descriptor("application/vnd.oci.image.layer.v1.tar", layer_tar)
    config = canonical({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sleep", "100000"],
                   "Env": ["PATH=/bin"],
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created_by": "blade tests/cri/containerd/make_oci_image.py"}],
    })
    config_desc = descriptor("application/vnd.oci.image.config.v1+json", config)
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    })
    manifest_desc = descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
    index = canonical({"schemaVersion": 2, "manifests": [manifest_desc]})

    def blob(desc, data):
        return entry("blobs/sha256/" + desc["digest"][len("sha256:"):],
                     tarfile.REGTYPE, 0o644, data)

    image = tar_bytes([
        entry("blobs", tarfile.DIRTYPE, 0o755),
        entry("blobs/sha256", tarfile.DIRTYPE, 0o755),
        blob(layer_desc, layer_tar),
        blob(config_desc, config),
        blob(manifest_desc, manifest),
        entry("oci-layout", tarfile.REGTYPE, 0o644, canonical({"imageLayoutVersion": "1.0.0"})),
        entry("index.json", tarfile.REGTYPE, 0o644, index),
    ])
    with open(out, "wb") as f:
        f.write(image)


if __name__ == "__main__":
    main()
