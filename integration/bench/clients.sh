#!/bin/bash
# The tools that run ssh, timed through ssh and through socketpipe --ssh against the same sshd,
# interleaved (ssh, socketpipe, ssh, socketpipe, ...), medians and ratios. By hand, not in CI:
# the figures in docs/ssh-mode.md came from it. The remote host must see the same paths as this
# one (a throwaway sshd on loopback whose sessions find socketpipe on PATH and have a clean
# HOME), and SSH_CONFIG must name it as HOST.
#
#   SP=bin/socketpipe SSH_CONFIG=/tmp/sshd/ssh_config HOST=lab RUNS=5 integration/bench/clients.sh
set -u
W=${WORK:-/dev/shm/socketpipe-clients}
SP=$(realpath "${SP:-bin/socketpipe}")
CFG=${SSH_CONFIG:?SSH_CONFIG names an ssh_config for HOST}
H=${HOST:?HOST is the Host alias in SSH_CONFIG}
RUNS=${RUNS:-5}
ONLY=${ONLY:-rsync scpO scp tar git borg restic}
export BORG_PASSPHRASE=x BORG_BASE_DIR=$W/borgbase BORG_RELOCATED_REPO_ACCESS_IS_OK=yes RESTIC_PASSWORD=x RESTIC_CACHE_DIR=$W/rcache
export XDG_CACHE_HOME=$W/xdg GIT_CONFIG_NOSYSTEM=1 HOME=$W/home
mkdir -p $W/home $W/xdg
printf '#!/bin/sh\nexec %s --ssh -F %s "$@"\n' "$SP" "$CFG" > $W/sp-ssh; chmod +x $W/sp-ssh
[ -f $W/big ] || head -c $((1024*1024*1024)) /dev/urandom > $W/big
[ -f $W/half ] || head -c $((512*1024*1024)) $W/big > $W/half
if [ ! -d $W/repo.git ]; then
  rm -rf $W/gsrc; git init -q -b main $W/gsrc
  for i in $(seq 1 8); do head -c $((32*1024*1024)) /dev/urandom > $W/gsrc/blob$i; done
  git -C $W/gsrc add -A; git -C $W/gsrc -c user.name=t -c user.email=t@e commit -qm big
  git clone -q --bare $W/gsrc $W/repo.git; git -C $W/repo.git repack -a -d -q
fi
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>$W/err || { echo "FAILED: $*" >&2; cat $W/err >&2; }; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
declare -A R
for run in $(seq 1 $RUNS); do
  for wl in $ONLY; do
    for via in ssh sp; do
      if [ $via = ssh ]; then RSH="ssh -F $CFG"; else RSH="$SP --ssh -F $CFG"; fi
      case $wl in
      rsync) rm -rf $W/dst; x=$(t rsync -a -W -e "$RSH" $W/big $H:$W/dst/) ;;
      scpO)  rm -f $W/scpdst; if [ $via = ssh ]; then x=$(t scp -O -F $CFG $W/big $H:$W/scpdst); else x=$(t scp -O -S $W/sp-ssh $W/big $H:$W/scpdst); fi ;;
      scp)   rm -f $W/scpdst; if [ $via = ssh ]; then x=$(t scp -F $CFG $W/big $H:$W/scpdst); else x=$(t scp -S $W/sp-ssh $W/big $H:$W/scpdst); fi ;;
      tar)   rm -rf $W/tdst; mkdir -p $W/tdst; x=$(t sh -c "tar cf - -C $W big | $RSH $H 'tar xf - -C $W/tdst'") ;;
      git)   rm -rf $W/gclone; x=$(t env GIT_SSH_COMMAND="$RSH" git clone -q $H:$W/repo.git $W/gclone) ;;
      borg)  rm -rf $W/borgrepo $W/borgbase; BORG_RSH="$RSH" borg init -e none $H:$W/borgrepo >/dev/null 2>&1
             x=$(t env BORG_RSH="$RSH" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes borg create --compression none $H:$W/borgrepo::a $W/half) ;;
      restic) rm -rf $W/restic $W/rcache
             if [ $via = ssh ]; then SC="ssh -F $CFG $H -s sftp"; else SC="$SP --ssh -F $CFG $H /usr/lib/openssh/sftp-server"; fi
             restic -o sftp.command="$SC" -r sftp:$H:$W/restic init >/dev/null 2>&1
             x=$(t restic -o sftp.command="$SC" -r sftp:$H:$W/restic backup --quiet $W/half) ;;
      esac
      R[$wl.$via]="${R[$wl.$via]:-} $x"
      echo "run $run $wl $via $x" >&2
    done
  done
done
med() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-8s %10s %10s %14s %16s\n' workload ssh sp-ssh "ratio(medians)" "median(paired)"
for wl in $ONLY; do
  a=$(med "${R[$wl.ssh]}"); b=$(med "${R[$wl.sp]}")
  pr=$(paste <(printf '%s\n' ${R[$wl.ssh]}) <(printf '%s\n' ${R[$wl.sp]}) | awk '{print $1/$2}')
  printf '%-8s %9.2fs %9.2fs %13.2fx %15.2fx   ssh:%s sp:%s\n' $wl $a $b $(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }') $(med "$pr") "${R[$wl.ssh]}" "${R[$wl.sp]}"
done
