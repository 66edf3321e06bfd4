# Sourced by up.sh and down.sh: pid files that name the process they were written for.
# up.sh records each process's pid and its start time; down.sh signals a pid only while
# it still names that process (the kernel reuses the pids of processes that are gone).
# Needs $run, the folder of the pid files.

# record_pid PID NAME: $run/NAME.pid and $run/NAME.start
record_pid() {
    echo "$1" >"$run/$2.pid"
    ps -o lstart= -p "$1" >"$run/$2.start" 2>/dev/null || :
}

# ours NAME: true while NAME's pid is alive and is still the process up.sh started
ours() {
    local pid started now
    pid="$(cat "$run/$1.pid" 2>/dev/null)" || return 1
    started="$(cat "$run/$1.start" 2>/dev/null)" || return 1
    now="$(ps -o lstart= -p "$pid" 2>/dev/null)" || return 1
    [ -n "$started" ] && [ "$now" = "$started" ]
}
