#!/bin/bash
# Install everything minibox needs on a Debian 12 / Ubuntu machine, as root,
# then build it.
#   scripts/setup.sh          what `minibox` itself needs (Node.js, npm packages,
#                             libnftables1 for the bridge network's firewall)
#   scripts/setup.sh --test   plus the test suite's real peers: a registry
#                             (docker-registry), skopeo, umoci, busybox-static,
#                             podman (save/load are checked against it), runc
#                             (minibox-runc's output is compared with it),
#                             containerd (drives minibox-runc in the tests)
#   scripts/setup.sh --bench  plus the benchmark peers: podman, runc, crun,
#                             buildah, hyperfine; netavark and aardvark-dns
#                             (podman's bridge network) and wrk (HTTP load)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (minibox mounts filesystems and creates namespaces)" >&2
  exit 1
fi

# libnftables1: minibox writes its nftables table through the library (koffi),
# never by running `nft`.
packages=(ca-certificates git gcc libc6-dev make libnftables1)
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 18 ]; then packages+=(nodejs npm); fi
for arg in "$@"; do
  case "$arg" in
    --test) packages+=(docker-registry skopeo umoci busybox-static openssl apache2-utils python3 qemu-system-x86 xz-utils curl
                       podman runc containerd) ;;
    --bench) packages+=(docker-registry skopeo umoci busybox-static openssl apache2-utils python3
                        podman runc crun buildah hyperfine netavark aardvark-dns wrk) ;;
    *) echo "setup: unknown option $arg (use --test or --bench)" >&2; exit 1 ;;
  esac
done

# Only touch apt when something is missing: a set-up machine stays as it is.
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # docker-registry's package starts a registry service on :5000 with htpasswd
  # auth; the tests start their own, so keep the packaged one from starting.
  # (Leave an existing policy-rc.d alone.)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
echo "setup: minibox is built; run ./minibox --help"
