#!/bin/sh
# tests/chaos/prog.sh DIR MODE [LIMIT_S [NAME [ANY]]]: a program the chaos test
# supervises (NAME: its service's; ANY is ignored: a config changes it to change
# the argv).
#
# MODE: "plain" sleeps; "forker" also starts two grandchildren (this script
# again as "grandchild"), in its own process group, so a kill -9 of the
# program leaves them to arbor (its child subreaper) to reap and stop;
# "crasher" exits 3 after a few seconds, so some services fail by themselves.
#
# Every process records "PID MODE NAME" in DIR/pids as it starts: the test checks
# at the end that none of them is left. Each ends by itself once DIR is gone
# (checked every second) or after LIMIT_S seconds (default 900), so a failed
# or killed test never leaves one behind for long.
dir=$1 mode=$2 limit=${3:-900} name=${4:-?}
[ -d "$dir" ] || exit 0
echo "$$ $mode $name" >>"$dir/pids"
if [ "$mode" = forker ]; then
  sh "$0" "$dir" grandchild "$limit" "$name" &
  sh "$0" "$dir" grandchild "$limit" "$name" &
fi
i=0
while [ -d "$dir" ] && [ "$i" -lt "$limit" ]; do
  sleep 1
  i=$((i + 1))
  if [ "$mode" = crasher ] && [ "$i" -ge 3 ]; then
    echo "crasher $$: exiting 3 on purpose" >&2
    exit 3
  fi
done
exit 0
