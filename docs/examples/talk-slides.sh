#!/bin/sh
# The talk's build slides, reproduced offline: a busybox image made from the
# host's busybox-static (Debian: apt-get install busybox-static) stands in for
# alpine:3.8. Run as root from anywhere: ./docs/examples/talk-slides.sh
# Uses its own state directory, removed at the end.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
minibox="$here/../../minibox"
work=$(mktemp -d /tmp/minibox-slides-XXXXXX)
chmod 711 "$work" # the containers' root user (user namespace) must reach the store
trap 'rm -rf "$work"' EXIT
mb() { "$minibox" --root "$work/root" "$@"; }
show() { printf '# minibox %s\n' "$*"; mb "$@"; }

# A root filesystem: busybox, its applets, and the users the slides need.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $("$work/rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -c . | mb import - busybox:latest >/dev/null

# Slide: the hello image.
mkdir "$work/hello"
cd "$work/hello"
echo 'Hello from minibox!' >greeting.txt
cat >Dockerfile <<'DOCKERFILE'
FROM busybox
COPY greeting.txt ./
USER nobody
CMD ["cat", "greeting.txt"]
DOCKERFILE
echo '# cat Dockerfile'
cat Dockerfile
show build -t hello .
show run --rm hello
show build -t hello .

# Slide: the web server image and its history.
mkdir "$work/web"
cd "$work/web"
echo 'Hello from the web server' >greeting.txt
cat >Dockerfile <<'DOCKERFILE'
FROM busybox
RUN mkdir -p /etc/files && rm /bin/wget
WORKDIR /etc/files
COPY greeting.txt .
EXPOSE 8080
USER nobody
CMD ["httpd", "-f", "-v", "-p", "8080"]
DOCKERFILE
echo '# cat Dockerfile'
cat Dockerfile
show build -t web .
show history web
show images
