#!/usr/bin/env bash
# Assembles drill's container image from scratch with buildah, the same
# layout as the Containerfile's runtime stage (base images cannot be pulled
# here), then runs `drill --version` and `drill validate` inside it.
#
#   ci/image.sh [--bin PATH] [--tag NAME] [--keep]
#
# --bin   the drill binary to put in (default target/release/drill, built
#         with `cargo build --release --locked` when missing); its shared
#         libraries are found with ldd and copied beside it.
# --tag   the image name (default localhost/drill:dev)
# --keep  keep buildah's private storage and print its path (default: removed)
#
# Storage is private to this run (vfs driver, a temporary root) so that
# nothing of the machine's own container storage is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/drill
tag=localhost/drill:dev
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "ci/image.sh: unknown argument $1 (see the header of ci/image.sh)" >&2; exit 2 ;;
  esac
done

if ! command -v buildah >/dev/null 2>&1; then
  echo "ci/image.sh: buildah not found (Debian: apt-get install buildah)" >&2
  exit 2
fi
if [ ! -x "$bin" ]; then
  if [ "$bin" = target/release/drill ]; then
    cargo build --release --locked
  else
    echo "ci/image.sh: --bin $bin is not an executable" >&2
    exit 2
  fi
fi

uid=65532 # distroless's `nonroot`, as in the Containerfile
work="$(mktemp -d -t drill-image.XXXXXX)"
cleanup() {
  if [ "$keep" = 1 ]; then
    echo "ci/image.sh: storage kept in $work" >&2
  else
    # vfs layers hold files owned by other uids: remove as we made them.
    buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs rm --all >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT
b() { buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs "$@"; }

# The root filesystem: the binary without debug info, its libraries and
# loader (ldd), the CA bundle, a passwd with the non-root user, the scenarios.
fs="$work/rootfs"
mkdir -p "$fs/usr/local/bin" "$fs/etc/ssl/certs" "$fs/usr/share/drill" "$fs/tmp"
chmod 1777 "$fs/tmp"
objcopy --strip-debug "$bin" "$fs/usr/local/bin/drill" 2>/dev/null || cp "$bin" "$fs/usr/local/bin/drill"
ldd "$bin" | awk '/=> \//{print $3} /^\t\//{print $1}' | while read -r lib; do
  mkdir -p "$fs$(dirname "$lib")"
  cp -L "$lib" "$fs$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' "$uid" "$uid" >"$fs/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$uid" >"$fs/etc/group"
cp -r scenarios "$fs/usr/share/drill/scenarios"
mkdir -p "$work/state/state"

ctr="$(b from scratch)"
b copy "$ctr" "$fs" / >/dev/null
b copy --chown "$uid:$uid" "$ctr" "$work/state" /var/lib/drill >/dev/null
b config \
  --user "$uid:$uid" \
  --workingdir /usr/share/drill \
  --env DRILL_STATE_DIR=/var/lib/drill/state \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --entrypoint '["/usr/local/bin/drill"]' \
  --cmd --help \
  --label org.opencontainers.image.title=drill \
  "$ctr"
b commit --quiet "$ctr" "$tag" >/dev/null
b rm "$ctr" >/dev/null

# Run the committed image, as its configured user, in its workdir.
user="$(b inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")"
[ "$user" = "$uid:$uid" ] || { echo "ci/image.sh: image user is '$user', not $uid:$uid" >&2; exit 1; }
run="$(b from "$tag")"
version="$(b run --isolation chroot "$run" -- /usr/local/bin/drill --version)"
echo "ci/image.sh: $tag: $version"
b run --isolation chroot "$run" -- /usr/local/bin/drill validate scenarios/ingress-failover.toml
# Non-root for real: the same scenario, once world-readable and once
# readable by root only (added to this test container, not the image): drill
# must validate the first and fail to read the second.
install -m 0644 scenarios/ingress-failover.toml "$work/readable.toml"
install -m 0600 scenarios/ingress-failover.toml "$work/root-only.toml"
b copy --chown 0:0 "$run" "$work/readable.toml" "$work/root-only.toml" /probe/ >/dev/null
b run --isolation chroot "$run" -- /usr/local/bin/drill validate /probe/readable.toml >/dev/null
if b run --isolation chroot "$run" -- /usr/local/bin/drill validate /probe/root-only.toml >/dev/null 2>&1; then
  echo "ci/image.sh: drill read a root-only file: the image does not run as a non-root user" >&2
  exit 1
fi
size="$(du -sh "$fs" | cut -f1)"
echo "ci/image.sh: $tag built from scratch (root filesystem $size), ran as uid $uid: ok"
