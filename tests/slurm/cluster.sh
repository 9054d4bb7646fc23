#!/usr/bin/env bash
# A throw-away one-node Slurm cluster on loopback for tests/slurm: munged, slurmctld and slurmd started from a
# private folder (their own config, key, sockets, state and logs; no systemd, nothing under /etc touched).
#   cluster.sh start DIR   -> prints the SLURM_CONF path once the node is idle (fails after 60 s)
#   cluster.sh stop DIR    -> stops the three daemons by their pid files
# Needs root (slurmd runs jobs as their submitting user) and the Debian packages slurm-wlm, munge.
set -euo pipefail
cmd=${1:?start|stop}
D=$(realpath -m "${2:?folder}")

stop() {
  for p in slurmd slurmctld munged; do
    if [ -f "$D/$p.pid" ]; then
      pid=$(cat "$D/$p.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$D/$p.pid"
    fi
  done
}

free_port() {
  python3 - 2>/dev/null <<'PY' || echo $((20000 + RANDOM % 20000))
import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
PY
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: cluster.sh start|stop DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root" >&2; exit 1; }
for b in munged slurmctld slurmd sbatch sinfo; do
  command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "cluster.sh: $b not installed (bash scripts/setup.sh)" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin
mkdir -p "$D"/{munge,state,spool,log}
chmod 700 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
munged --force --socket="$D/munge/munge.socket" --key-file="$D/munge/munge.key" --pid-file="$D/munged.pid" \
  --log-file="$D/log/munged.log" --seed-file="$D/munge/munged.seed"
for _ in $(seq 50); do [ -S "$D/munge/munge.socket" ] && break; sleep 0.1; done

CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
cat > "$D/slurm.conf" <<CONF
ClusterName=lctxtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=300
KillWait=2
NodeName=lctxnode NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=lctxnode Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$D/slurm.conf
slurmctld -c -i -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N lctxnode
for _ in $(seq 120); do
  state=$(sinfo -h -N -o %t 2>/dev/null || true)
  if [ "$state" = idle ]; then echo "$SLURM_CONF"; exit 0; fi
  sleep 0.5
done
echo "cluster.sh: the node did not become idle in 60 s (state '${state:-}'); logs in $D/log" >&2
tail -5 "$D/log/slurmctld.log" "$D/log/slurmd.log" >&2 || true
stop
exit 1
