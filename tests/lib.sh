# tests/lib.sh: helpers sourced by tests/t_*.sh.
#
# Each check prints one line "PASS <name>" or "FAIL <name>: <why>"; tests/run.sh
# counts them. Scripts run from the repository root with ROOT and TMP set
# (TMP is a fresh scratch directory per script).

ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
TMP=${TMP:-$(mktemp -d)}

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# check NAME CMD...: passes when CMD exits 0; shows CMD's output when it fails
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then pass "$name"; else
        fail "$name" "exit $? from: $*"; printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    fi
}

# check_help_lists NAME MIN FLAGS HELP: each line of FLAGS (a program's flag
# table, at least MIN lines) appears in HELP (its --help text)
check_help_lists() {
    local name=$1 min=$2 flags=$3 help=$4 count missing
    count=$(printf '%s\n' "$flags" | grep -c .)
    missing=$(printf '%s\n' "$flags" | while IFS= read -r f; do printf '%s\n' "$help" | grep -qF -- "$f" || echo "$f"; done)
    if [ "$count" -ge "$min" ] && [ -z "$missing" ]; then pass "$name ($count)"
    else fail "$name" "missing: $missing (table: $count flags)"; fi
}

# expect_error NAME SUBSTRING CMD...: CMD must exit non-zero (not by a signal),
# within 60 s, and print SUBSTRING (case-insensitive) on stderr as one
# "error: ..." line
expect_error() {
    local name=$1 want=$2; shift 2
    local err rc
    err=$(timeout 60 "$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 0 ]; then fail "$name" "exited 0, expected an error"; return; fi
    if [ $rc -eq 124 ]; then fail "$name" "hung (timeout)"; return; fi
    if [ $rc -ge 128 ]; then fail "$name" "killed by signal $((rc-128)): $err"; return; fi
    if ! printf '%s' "$err" | grep -q '^error: '; then fail "$name" "no 'error:' line in: $err"; return; fi
    if ! printf '%s\n' "$err" | grep '^error: ' | grep -qiF -- "$want"; then
        fail "$name" "no 'error:' line says '$want': $err"; return
    fi
    pass "$name"
}
