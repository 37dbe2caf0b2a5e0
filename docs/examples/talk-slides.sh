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

# Slide: run it, published on the host's loopback only (the talk's -p 127.0.0.1:9090:8080).
echo '# minibox run -d --name server -p 127.0.0.1:9090:8080 web'
mb run -d --name server -p 127.0.0.1:9090:8080 web | cut -c1-12
echo '# curl localhost:9090/greeting.txt'
# The server needs a moment after `run -d` returns: retry while the port refuses.
curl -sS --retry 20 --retry-connrefused --retry-delay 0 localhost:9090/greeting.txt
show ps
show port server
# httpd as PID 1 has no TERM handler: stop waits -t seconds, then KILLs (--init would forward TERM).
show stop -t 1 server
show ps -a
show rm server

# Containers on a network of their own find each other by name (and alias).
echo '# minibox network create talk'
mb network create talk | cut -c1-12
echo '# minibox run -d --name server --network talk --network-alias www web'
mb run -d --name server --network talk --network-alias www web | cut -c1-12
# (the server needs a moment after `run -d` returns)
echo "# minibox run --rm --network talk busybox sh -c 'sleep 0.3; wget -qO- http://www:8080/greeting.txt'"
mb run --rm --network talk busybox sh -c 'sleep 0.3; wget -qO- http://www:8080/greeting.txt'
show rm -f server
show network rm talk

# Slide: volumes. A bind mount, read-only, published on every interface:
# minibox warns about that (the talk's best-practice slide).
echo 'Hello from a bind mount' >"$work/greeting.txt"
echo "# minibox run -d --name files -v \$PWD:/etc/files:ro -p 9091:8080 web"
mb run -d --name files -v "$work:/etc/files:ro" -p 9091:8080 web 2>&1 | sed 's/^\([0-9a-f]\{12\}\)[0-9a-f]*$/\1/'
echo '# curl localhost:9091/greeting.txt'
curl -sS --retry 20 --retry-connrefused --retry-delay 0 localhost:9091/greeting.txt
show rm -f files
