#!/usr/bin/env bash
# The manual pages, completions and Debian package, as an operator meets them:
#   1. each page renders with `man -l` without a warning;
#   2. each completion script loads in its shell and completes `ndprelay st` to status;
#   3. scripts/package.sh builds the .deb, it holds what packaging/README.md says, and
#      lintian finds nothing (warnings included);
#   4. the package installs with `dpkg -i` in a throwaway root, its files are in place,
#      the binary runs, both units pass `systemd-analyze verify`; `dpkg -r` keeps the
#      conffile, `dpkg -P` leaves nothing behind.
#
# The throwaway root is the host's own / under an overlayfs whose upper layer is a tmpfs,
# in a private mount namespace (unshare --mount): dpkg, its database and everything the
# package writes land in the tmpfs and vanish with the namespace, so the host is never
# touched. It has systemd-analyze, man and the shells the checks need without a download
# (a debootstrap'd root would need the Debian mirror or a cache of it, and its minbase
# variant has no systemd).
# "Clean" is checked, not assumed: nothing of ndprelay may be there before the install.
#
# Needs root (mounts), dpkg-deb, man-db, groff, bash, zsh, fish, systemd (systemd-analyze),
# iproute2, lintian.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || fail "needs root (overlay mount in a private mount namespace)"
for tool in man groff bash zsh fish dpkg-deb systemd-analyze unshare ip gzip lintian; do
    command -v "$tool" >/dev/null 2>&1 || fail "needs '$tool' (run: scripts/test.sh deps)"
done

work=$(mktemp -d /tmp/ndpr-package.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- the package (scripts/package.sh builds the release binary first) ----
deb=$(scripts/package.sh)
# Built twice from the same tree, it is the same file (SOURCE_DATE_EPOCH, gzip -n).
first=$(sha256sum <"$deb")
scripts/package.sh --no-build >/dev/null 2>&1
[ "$(sha256sum <"$deb")" = "$first" ] || fail "a second build of the package differs"
bin=target/release/ndprelay

# ---- 1. manual pages ----
"$bin" generate man "$work/man" >/dev/null
pages=("$work"/man/*)
[ ${#pages[@]} -eq 8 ] || fail "expected 8 pages, got: ${pages[*]}"
for page in "${pages[@]}"; do
    warnings=$(MANWIDTH=80 man -l --warnings -E UTF-8 "$page" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man -l $(basename "$page") warns: $warnings"
    lines=$(MANWIDTH=80 man -l -E UTF-8 "$page" 2>/dev/null | wc -l)
    [ "$lines" -gt 20 ] || fail "$(basename "$page") renders only $lines lines"
done
MANWIDTH=80 man -l "$work/man/ndprelay.ron.5" 2>/dev/null | grep -q 'timers.retrans_timer: "1s"' ||
    fail "ndprelay.ron(5) lacks timers.retrans_timer"
MANWIDTH=80 man -l "$work/man/ndprelay-status.8" 2>/dev/null | grep -q -- '-n, --name' ||
    fail "ndprelay-status(8) lacks -n"
ok "${#pages[@]} manual pages render without warnings"

# ---- 2. completions ----
"$bin" generate completion bash >"$work/ndprelay.bash"
"$bin" generate completion zsh >"$work/_ndprelay"
"$bin" generate completion fish >"$work/ndprelay.fish"
got=$(bash --norc -c 'source "$1"; complete -p ndprelay; COMP_WORDS=(ndprelay st); COMP_CWORD=1;
    COMP_LINE="ndprelay st"; COMP_POINT=11; _ndprelay ndprelay st ndprelay; echo "${COMPREPLY[*]}"' \
    _ "$work/ndprelay.bash")
grep -q '^complete .* ndprelay$' <<<"$got" || fail "bash: no completion registered: $got"
grep -qw status <<<"$got" || fail "bash: 'ndprelay st' does not complete to status: $got"
got=$(zsh -f -c 'autoload -U compinit; compinit -u -D; source "$1"; print -r -- "$_comps[ndprelay]"' \
    _ "$work/_ndprelay" 2>&1)
[ "$got" = _ndprelay ] || fail "zsh: compdef did not register _ndprelay: $got"
got=$(fish --no-config -c 'source $argv[1]; complete -C"ndprelay st"' "$work/ndprelay.fish" 2>&1)
grep -q '^status' <<<"$got" || fail "fish: 'ndprelay st' does not complete to status: $got"
got=$(fish --no-config -c 'source $argv[1]; complete -C"ndprelay status --"' "$work/ndprelay.fish" 2>&1)
grep -q '^--name' <<<"$got" || fail "fish: status lacks --name: $got"
ok "bash, zsh and fish completions load and complete"

# ---- 3. the package's contents ----
contents=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $NF}')
for f in ./usr/sbin/ndprelay ./usr/lib/systemd/system/ndprelay.service \
    ./usr/lib/systemd/system/ndprelay@.service ./etc/ndprelay/ndprelay.ron \
    ./etc/iproute2/rt_protos.d/ndprelay.conf ./usr/share/man/man8/ndprelay.8.gz \
    ./usr/share/man/man8/ndprelay-status.8.gz ./usr/share/man/man5/ndprelay.ron.5.gz \
    ./usr/share/bash-completion/completions/ndprelay ./usr/share/zsh/vendor-completions/_ndprelay \
    ./usr/share/fish/vendor_completions.d/ndprelay.fish ./usr/share/doc/ndprelay/copyright \
    ./usr/share/doc/ndprelay/changelog.Debian.gz; do
    grep -q " $f\$" <<<"$contents" || fail "$deb lacks $f"
done
if grep -v '^[d-]rw[-x]r-[-x]r-[-x] root/root ' <<<"$contents" | grep -q .; then
    fail "files not root-owned 0644/0755: $(grep -v '^[d-]rw[-x]r-[-x]r-[-x] root/root ' <<<"$contents")"
fi
[ "$(dpkg-deb -f "$deb" Package)" = ndprelay ] || fail "Package field"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$work/conffiles"
printf '/etc/ndprelay/ndprelay.ron\n/etc/iproute2/rt_protos.d/ndprelay.conf\n' | cmp -s - "$work/conffiles" ||
    fail "conffiles: $(cat "$work/conffiles")"
ok "$deb holds binary, units, conffiles, pages and completions ($(du -k "$deb" | cut -f1) KiB)"
# Debian's own checks; the overrides the package ships say where it knowingly differs.
rc=0
findings=$(lintian --fail-on warning "$deb" 2>&1) || rc=$?
findings=$(grep -v 'running with root privileges' <<<"$findings" || true)
[ "$rc" -eq 0 ] && [ -z "$findings" ] || fail "lintian (exit $rc): $findings"
ok "lintian --fail-on warning: no findings"

# ---- 4. install, verify, remove and purge in a throwaway root ----
cp "$deb" "$work/ndprelay.deb"
cat >"$work/in-root.sh" <<'EOF'
set -euo pipefail
fail() { printf 'FAIL (in the root): %s\n' "$*" >&2; exit 1; }
ours=(/usr/sbin/ndprelay /usr/lib/systemd/system/ndprelay.service
    /usr/lib/systemd/system/ndprelay@.service /usr/share/man/man8/ndprelay.8.gz
    /usr/share/man/man5/ndprelay.ron.5.gz /usr/share/bash-completion/completions/ndprelay
    /usr/share/zsh/vendor-completions/_ndprelay /usr/share/fish/vendor_completions.d/ndprelay.fish
    /usr/share/doc/ndprelay/copyright)
conffiles=(/etc/ndprelay/ndprelay.ron /etc/iproute2/rt_protos.d/ndprelay.conf)
for f in "${ours[@]}" "${conffiles[@]}" /etc/ndprelay /var/lib/ndprelay; do
    [ ! -e "$f" ] || fail "not clean: $f exists before the install"
done
! dpkg -s ndprelay >/dev/null 2>&1 || fail "not clean: ndprelay is known to dpkg"
! ip -6 route show proto ndprelay >/dev/null 2>&1 || fail "proto ndprelay is known before the install"

dpkg -i /tmp/ndprelay.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i"; }
for f in "${ours[@]}" "${conffiles[@]}"; do [ -f "$f" ] || fail "$f missing after dpkg -i"; done
/usr/sbin/ndprelay --version | grep -q '^ndprelay ' || fail "ndprelay --version"
/usr/sbin/ndprelay check -c /etc/ndprelay/ndprelay.ron >/dev/null 2>&1 || fail "the shipped config does not pass check"
ip -6 route show proto ndprelay >/dev/null || fail "ip does not know proto ndprelay (rt_protos.d)"
MANWIDTH=80 man 5 ndprelay.ron 2>/dev/null | grep -q 'uplink' || fail "man 5 ndprelay.ron"
MANWIDTH=80 man ndprelay 2>/dev/null | grep -q 'ndprelay-status(8)' || fail "man ndprelay"
bash --norc -c 'source /usr/share/bash-completion/completions/ndprelay; complete -p ndprelay' >/dev/null ||
    fail "installed bash completion"
# Both units, with their binary at its path; any line naming them is a finding.
# (The template is verified as an instance, as systemd starts it.)
cp /usr/lib/systemd/system/ndprelay@.service /tmp/ndprelay@lab.service
for unit in /usr/lib/systemd/system/ndprelay.service /tmp/ndprelay@lab.service; do
    out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
    if grep -i 'ndprelay' <<<"$out"; then fail "systemd-analyze verify $unit warns"; fi
    echo "systemd-analyze verify $unit: ${out:-no findings}"
done

# Remove: everything but the conffiles goes; dpkg remembers them.
mkdir -p /var/lib/ndprelay/lab && echo '{}' >/var/lib/ndprelay/lab/state
echo '// edited' >>/etc/ndprelay/ndprelay.ron
dpkg -r ndprelay >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -r"; }
for f in "${ours[@]}"; do [ ! -e "$f" ] || fail "$f left after dpkg -r"; done
for f in "${conffiles[@]}"; do [ -f "$f" ] || fail "conffile $f gone after dpkg -r"; done
dpkg -s ndprelay 2>/dev/null | grep -q '^Status: deinstall ok config-files' || fail "dpkg -s after -r"
# Purge: the conffiles, /etc/ndprelay and the state go too.
dpkg -P ndprelay >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -P"; }
for f in "${conffiles[@]}" /etc/ndprelay /var/lib/ndprelay /usr/share/doc/ndprelay; do
    [ ! -e "$f" ] || fail "$f left after dpkg -P"
done
! dpkg -s ndprelay >/dev/null 2>&1 || fail "dpkg still knows ndprelay after -P"
echo "in-root checks passed"
EOF
timeout 300 unshare --mount --propagation private bash -euo pipefail -c '
    work=$1
    mkdir -p "$work/layer" "$work/root"
    mount -t tmpfs -o size=512m tmpfs "$work/layer"
    mkdir -p "$work/layer/upper" "$work/layer/work"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$work/layer/upper,workdir=$work/layer/work" "$work/root"
    mount --rbind /dev "$work/root/dev"
    mount -t proc proc "$work/root/proc"
    mount -t tmpfs tmpfs "$work/root/tmp"
    mount -t tmpfs tmpfs "$work/root/run"
    cp "$work/ndprelay.deb" "$work/in-root.sh" "$work/root/tmp/"
    chroot "$work/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 bash /tmp/in-root.sh ||
        exit 1
    # Nothing of the package is left in the layer that took every write (but the
    # formatted pages man-db cached when this test ran `man`: mandb drops stale ones).
    left=$(find "$work/layer/upper" -name "*ndprelay*" -not -path "*/var/cache/man/*")
    [ -z "$left" ] || { echo "FAIL: left behind after purge: $left" >&2; exit 1; }
 ' _ "$work" || fail "install/remove in the throwaway root (above)"
ok "installs with dpkg -i, units verify, dpkg -r keeps the conffiles, dpkg -P leaves nothing"
