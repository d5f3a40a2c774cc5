#!/usr/bin/env bash
# 50,000 creates and 50,000 lookups in one directory inside a guest on a
# default `mke2fs -t ext4` root, our `linux` against Debian's `linux.uml`
# on the same image, in the same run (issue 15; see BENCHMARKS.md). The
# guest's busybox shell times each phase with `time` (creates: `: > f$i`;
# lookups: `[ -e f$i ]`, every name once, after a fresh boot so the
# guest's caches are cold; then `sync`).
# Run as root (linux.uml needs the seccomp shim here; `linux` runs as an
# unprivileged user through setpriv, as a user would run it).
# Usage: benches/ext4_guest_dir.sh [WORKDIR]  (default: ./bench-data/dir)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin linux >/dev/null 2>&1
W=${1:-$PWD/bench-data/dir}
N=${N:-50000}
USER_NAME=${USER_NAME:-umlkit-test}
SHIM=${SHIM:-$PWD/../shared/tools/uml-noxstate}
[ -x "$SHIM" ] || SHIM=/work/shared/tools/uml-noxstate
GT=GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-AVX,-ERMS,-FSRM
export PATH=$PATH:/sbin:/usr/sbin
id "$USER_NAME" >/dev/null 2>&1 || useradd -M -s /bin/sh "$USER_NAME"
U=$(id -u "$USER_NAME"); G=$(id -g "$USER_NAME")
rm -rf "$W"; mkdir -p "$W"; chmod 755 "$W"
cp target/release/linux "$W/linux"
T=$W/tree
mkdir -p "$T"/{bin,sbin,etc,proc,sys,dev,tmp,d}
cp /bin/busybox "$T/bin/"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$T/bin/$a"; done
cat > "$T/init" <<INIT
#!/bin/sh
mount -t proc proc /proc 2>/dev/null
cd /d
case "\$PHASE" in
  create) time sh -c 'i=0; while [ \$i -lt $N ]; do : > f\$i; i=\$((i+1)); done; sync' ;;
  lookup) time sh -c 'i=0; n=0; while [ \$i -lt $N ]; do [ -e f\$i ] && n=\$((n+1)); i=\$((i+1)); done; echo FOUND=\$n' ;;
esac 2>&1
poweroff -f
INIT
chmod 755 "$T/init"
mke2fs -q -F -t ext4 -N $((N + 10000)) -d "$T" "$W/root_fs" 512M
chown -R "$U:$G" "$W"

ours() {
    (cd "$W" && HOME=$W setpriv --reuid="$U" --regid="$G" --clear-groups -- \
        ./linux ubd0=o.cow,root_fs root=/dev/ubda rw init=/init con=null con0=fd:0,fd:1 quiet "$@" </dev/null)
}
theirs() {
    (cd "$W" && HOME=$W timeout 1800 "$SHIM" linux.uml ubd0=t.cow,root_fs root=/dev/ubda rw init=/init \
        mem=256M con=null con0=fd:0,fd:1 quiet "$@" "$GT" </dev/null)
}
real() { tr -d '\r' | grep -E '^real' | sed -E 's/real[[:space:]]+([0-9]+)m ?([0-9.]+)s/\1 \2/' | awk '{print $1*60+$2}'; }
uptime
oc=$(ours PHASE=create 2>&1 | real); ol_out=$(ours PHASE=lookup 2>&1); ol=$(echo "$ol_out" | real)
tc=$(theirs PHASE=create 2>&1 | real); tl_out=$(theirs PHASE=lookup 2>&1); tl=$(echo "$tl_out" | real)
uptime
echo "$ol_out" | grep -o 'FOUND=[0-9]*' | sed 's/^/ours /'
echo "$tl_out" | grep -o 'FOUND=[0-9]*' | sed 's/^/linux.uml /'
echo "| $N names in one directory | linux | linux.uml | ratio |"
echo "|---|---|---|---|"
echo "| creates + sync | ${oc}s | ${tc}s | $(echo "scale=1; $tc / $oc" | bc)x |"
echo "| lookups (cold boot) | ${ol}s | ${tl}s | $(echo "scale=1; $tl / $ol" | bc)x |"
for img in o t; do
    uml_moo_out=$W/$img.merged
    target/release/uml_moo -q "$W/$img.cow" "$uml_moo_out" && e2fsck -fn "$uml_moo_out" >/dev/null && echo "$img: merged image e2fsck clean"
    rm -f "$uml_moo_out"
done
