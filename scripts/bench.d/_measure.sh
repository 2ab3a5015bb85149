# Sourced by the benchmarks in scripts/bench.d (not executable, so
# scripts/bench does not run it): one way to time a command and one table.
#
#   measure NAME CMD...   runs CMD under GNU time; appends "NAME wall_s
#                         cpu_s(user+sys) peak_rss_KiB exit load1" to $RESULTS
#                         (load1: the 1-minute load average as the run ended)
#   summarize             one row per NAME: median and best wall, median CPU,
#                         peak RSS, over the runs that succeeded, and the
#                         lowest and highest load average they ended at; failed
#                         runs counted in their own column, never in a figure
#   verdict LABEL OK      "met"/"NOT met", or "not measured" when any run failed
# Needs $WORK (scratch directory) and $RESULTS (a file) set by the caller.

ensure_gnu_time() {
    if [ ! -x /usr/bin/time ]; then
        echo "bench: installing GNU time (Debian package time)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
    fi
}

measure() {
    local name=$1
    shift
    local tf="$WORK/time-$name.txt" rc
    sync
    /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$WORK/out-$name.txt" 2>"$WORK/err-$name.txt" && rc=0 || rc=$?
    # On failure GNU time writes "Command exited with non-zero status N" first.
    local wall user sys rss
    read -r wall user sys rss < <(tail -n 1 "$tf")
    local cpu
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$wall" "$cpu" "$rss" "$rc" "$load" >>"$RESULTS"
    echo "bench: $name: wall ${wall}s, cpu ${cpu}s, peak RSS $((rss / 1024)) MiB, exit $rc, load average $load" >&2
}

summarize() {
    awk -F'\t' '
        function median(arr, m,   i, j, x) {
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (arr[j] < arr[i]) { x = arr[i]; arr[i] = arr[j]; arr[j] = x }
            return (m % 2) ? arr[(m + 1) / 2] : (arr[m / 2] + arr[m / 2 + 1]) / 2
        }
        { if (!($1 in n)) { order[++tools] = $1; n[$1] = 0 }
          if ($5 != 0) { bad[$1]++; next }
          n[$1]++; w[$1, n[$1]] = $2; c[$1, n[$1]] = $3; if ($4 > rss[$1]) rss[$1] = $4
          if (!($1 in lo) || $6 < lo[$1]) lo[$1] = $6; if ($6 > hi[$1]) hi[$1] = $6 }
        END {
            printf "%-30s %5s %9s %9s %9s %10s %7s  %s\n", "tool", "ok", "best s", "median s", "cpu s", "RSS MiB", "failed", "load"
            for (k = 1; k <= tools; k++) {
                t = order[k]; m = n[t]
                if (m == 0) { printf "%-30s %5d %9s %9s %9s %10s %7d\n", t, 0, "-", "-", "-", "-", bad[t]; continue }
                for (i = 1; i <= m; i++) { vw[i] = w[t, i]; vc[i] = c[t, i] }
                best = vw[1]; for (i = 2; i <= m; i++) if (vw[i] < best) best = vw[i]
                printf "%-30s %5d %9.2f %9.2f %9.2f %10.1f %7d  %s-%s\n", t, m, best, median(vw, m), median(vc, m), rss[t] / 1024, bad[t], lo[t], hi[t]
            }
        }' "$RESULTS"
}

# median_of NAME FIELD: the median of column FIELD (2 wall, 3 cpu) of NAME's
# successful runs ("nan" if none succeeded).
median_of() {
    awk -F'\t' -v t="$1" -v f="$2" '$1 == t && $5 == 0 { v[++m] = $f }
        END { for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
              if (m == 0) print "nan"; else print (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }' "$RESULTS"
}

# failed_runs: how many runs of any tool failed.
failed_runs() { awk -F'\t' '$5 != 0 { n++ } END { print n + 0 }' "$RESULTS"; }

# verdict LABEL OK: "met" or "NOT met"; "not measured" whenever a run failed,
# since a goal is never met over runs that did not do the work.
verdict() {
    local failed
    failed=$(failed_runs)
    if [ "$failed" -gt 0 ]; then
        echo "$1: not measured ($failed failed runs; see the failed column and the errors above)"
    elif [ "$2" = 1 ]; then echo "$1: met"; else echo "$1: NOT met"; fi
}

load_note() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"; }
