#!/usr/bin/env bash
# Benchmarks/dispatch/run.sh — the dispatcher's throughput through the mock carrier.
#
#   Benchmarks/dispatch/run.sh       # release build, both phases, prints the table, writes results.md
#
# One `ctower serve --role dispatch` process (release build, embedded PostgreSQL under a temp
# CTOWER_HOME, fsync on) and the mock carrier plugin it spawns. Fixtures go in with psql as the
# owner role; the carrier credentials are sealed with the same AES-256-GCM layout as the server
# (python3 + cryptography).
#
# Phase 1, throughput: N messages queued in one transaction (then NOTIFY), every gate check on
# (org requires consent and every recipient has a consent record, opt-outs and DNC entries exist
# for other phones, every message carries recipient zones for quiet hours and 10 % are Florida
# recipients, so the state-cap count and lock run), rate limits off in effect (10 numbers at
# 9,999.99 MPS). Reported: N / (last sent_at - the queueing commit), both on the database's clock
# (sent_at is recorded when the carrier's answer is written); and N / (last - first sent_at).
#
# Phase 2, pacing: PACED_NUMBERS numbers at PACED_MPS each, PACED_NUMBERS*PACED_MPS*PACED_SECONDS
# messages, with PACED_DISPATCHERS dispatcher processes sharing the database (the limits live in
# PostgreSQL, not in a process). Reported: achieved total rate (messages-1)/(last-first sent_at)
# against the configured total, as a ratio, the same over the middle 80 % of the messages, and
# the worst number's own ratio.
#
# Finally the mock's ledger is checked against the table: every message exactly once.
#
# Knobs [defaults]: N [50000] PACED_NUMBERS [10] PACED_MPS [20] PACED_SECONDS [30]
#   PACED_DISPATCHERS [2] BATCH [500] WORKERS [4] SKIP_BUILD [0] RESULTS [Benchmarks/dispatch/results.md]
#   BIN [the release bin path; e.g. .build/debug with SKIP_BUILD=1 to try the script quickly]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
N=${N:-50000} PACED_NUMBERS=${PACED_NUMBERS:-10} PACED_MPS=${PACED_MPS:-20} PACED_SECONDS=${PACED_SECONDS:-30}
BATCH=${BATCH:-500} WORKERS=${WORKERS:-4} PACED_DISPATCHERS=${PACED_DISPATCHERS:-2}
RESULTS=${RESULTS:-$here/results.md}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }
for tool in swift psql python3; do command -v "$tool" >/dev/null || die "missing $tool"; done
python3 -c 'import cryptography' 2>/dev/null || die "missing the python3 cryptography package (apt-get install -y python3-cryptography)"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  say "building ctower and ctower-carrier-mock (release, .build-bench)"
  (cd "$repo" && swift build -c release --scratch-path .build-bench --product ctower && \
    swift build -c release --scratch-path .build-bench --product ctower-carrier-mock) >&2
fi
bin=${BIN:-"$(cd "$repo" && swift build -c release --scratch-path .build-bench --show-bin-path)"}
[[ -x $bin/ctower && -x $bin/ctower-carrier-mock ]] || die "no release binaries in $bin"

work=$(mktemp -d /tmp/ctdisp.XXXXXX)
chmod 755 "$work"
pid=
extra=()
cleanup() {
  local p
  for p in "${extra[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export CTOWER_HOME=$work/home
CTOWER_MASTER_KEY=$(python3 -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())')
CTOWER_TOKEN_KEY=$(python3 -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())')
export CTOWER_MASTER_KEY CTOWER_TOKEN_KEY

say "starting ctower serve --role dispatch (embedded PostgreSQL in $CTOWER_HOME)"
"$bin/ctower" serve --role dispatch --listen 127.0.0.1:0 --dispatch-batch-size "$BATCH" --dispatch-workers "$WORKERS" \
  --log-level info >"$work/dispatch.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q 'serving' "$work/dispatch.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/dispatch.log" >&2; die "ctower serve exited"; }
  sleep 0.1
done
grep -q "serving" "$work/dispatch.log" || { tail -20 "$work/dispatch.log" >&2; die "ctower serve did not start"; }

db="host=$CTOWER_HOME/postgres port=5432 dbname=ctower user=ctower_owner"
org=$(python3 -c 'import uuid; print(uuid.uuid4())')
conn=$(python3 -c 'import uuid; print(uuid.uuid4())')
sql() { psql "$db" -v ON_ERROR_STOP=1 -qAtX -c "SELECT set_config('ctower.org_id', '$org', false)" -c "$1" | tail -n +2; }

# The credentials, sealed like TowerCrypto.SealedBox: version 1 || nonce || ciphertext || tag,
# bound to the org and connection ids.
sealed=$(python3 - "$org" "$conn" <<'PY'
import base64, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = base64.b64decode(os.environ["CTOWER_MASTER_KEY"])
nonce = os.urandom(12)
aad = f"ctower.carrier_connections:{sys.argv[1]}:{sys.argv[2]}".encode()
print((b"\x01" + nonce + AESGCM(key).encrypt(nonce, b'{"api_key":"bench"}', aad)).hex())
PY
)
# A fixed-offset zone where it is now early afternoon, so quiet hours let the run send.
zone=$(python3 -c '
import datetime
off = 13 - datetime.datetime.now(datetime.timezone.utc).hour
off = off - 24 if off > 12 else off + 24 if off < -12 else off
print("Etc/GMT" if off == 0 else ("Etc/GMT-%d" % off if off > 0 else "Etc/GMT+%d" % -off))')

say "fixtures: org, mock connection, consent records, opt-outs and DNC entries for other phones"
sql "
INSERT INTO orgs (id, name, require_consent) VALUES ('$org', 'Dispatch benchmark', true);
INSERT INTO carrier_connections (id, org_id, provider, name, credentials_encrypted, credentials_key_id, settings)
VALUES ('$conn', '$org', 'mock', 'Mock', '\\x$sealed', 'master',
        jsonb_build_object('seed', '5', 'status_events', 'false', 'ledger_path', '$work/ledger'));
INSERT INTO opt_outs (org_id, phone, keyword, channel)
SELECT '$org', '+1303' || (5000000 + i)::text, 'STOP', 'sms_keyword' FROM generate_series(0, 9999) i;
INSERT INTO dnc_entries (org_id, phone, source)
SELECT '$org', '+1404' || (5000000 + i)::text, 'national' FROM generate_series(0, 9999) i;"

# queue CAMPAIGN NUMBERS MPS COUNT: a running campaign with its own numbers, COUNT messages to
# distinct phones (each with a consent record), 10 % of them Florida recipients.
queue() {
  local campaign=$1 numbers=$2 mps=$3 count=$4 prefix=$5
  sql "
INSERT INTO campaigns (id, org_id, name, kind, status, started_at) VALUES ('$campaign', '$org', 'Bench $campaign', 'broadcast', 'running', now());
INSERT INTO phone_numbers (org_id, carrier_connection_id, phone, state, messages_per_second, daily_cap)
SELECT '$org', '$conn', '+1$prefix' || (5550000 + i)::text, 'active', $mps, 10000000 FROM generate_series(0, $numbers - 1) i;
INSERT INTO campaign_numbers (org_id, campaign_id, phone_number_id)
SELECT '$org', '$campaign', id FROM phone_numbers WHERE phone LIKE '+1$prefix%';
INSERT INTO consent_records (org_id, phone, action, source, seller_name, disclosure_version)
SELECT '$org', '+1${prefix}' || (6000000 + i)::text, 'granted', 'web form', 'Bench Land Co', 'v1' FROM generate_series(0, $count - 1) i;" >/dev/null
  sql "
BEGIN;
INSERT INTO messages (id, org_id, campaign_id, direction, to_phone, body, status, send_after, idempotency_key, purpose,
                      segments, encoding, recipient_zones, recipient_states)
SELECT g.id, '$org', '$campaign', 'outbound', '+1${prefix}' || (6000000 + g.i)::text,
       'Hi, this is Bench Land Co about your parcel ' || g.i || '. Reply STOP to opt out.', 'queued', now(), g.id::text,
       'campaign', 1, 'gsm7', ARRAY['$zone'], CASE WHEN g.i % 10 = 0 THEN ARRAY['FL'] ELSE ARRAY['TX'] END
FROM (SELECT gen_random_uuid() AS id, i FROM generate_series(0, $count - 1) i) g;
NOTIFY ctower_dispatch;
COMMIT;" >/dev/null
  # When the queue committed, on the database's clock (sent_at is on it too).
  local committed
  committed=$(sql "SELECT extract(epoch FROM clock_timestamp())")
  # What StartCampaign does once it has committed 1,000 queued messages or more (migration 0021),
  # while the dispatcher is already at work.
  if ((count >= 1000)); then sql "SELECT ctower_analyze_campaign_tables()" >/dev/null; fi
  echo "$committed"
}

wait_done() {
  local campaign=$1 timeout=$2 left
  for _ in $(seq 1 $((timeout * 4))); do
    # Cheap on purpose (it runs during the measurement): the dispatcher's own next-due lookup
    # (the due index, whatever the statistics say; an org-filtered EXISTS walked the thread
    # index over every sent row with the fresh table's stale statistics), in-flight rows
    # through the claims index.
    left=$(sql "SELECT ctower_dispatch_next_due() IS NOT NULL
                    OR EXISTS (SELECT 1 FROM messages WHERE claimed_by IS NOT NULL AND claimed_at > '-infinity')")
    [[ $left == f ]] && return
    kill -0 "$pid" 2>/dev/null || die "the dispatcher died; see $work/dispatch.log"
    sleep 0.25
  done
  die "campaign $campaign did not finish within ${timeout}s ($left left)"
}

# CPU seconds (user + system) of the dispatcher, its mock plugin and this run's PostgreSQL
# processes (those working in $CTOWER_HOME; other clusters on the machine, e.g. test databases,
# are not counted): where phase 1's time goes.
cpu() {
  python3 - "$pid" "$CTOWER_HOME" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def cpu(p):
    try:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / tick
    except OSError:
        return 0.0
def cmd(p):
    try: return open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
    except OSError: return []
disp = float(cpu(sys.argv[1]))
mock = pg = 0.0
for p in filter(str.isdigit, os.listdir("/proc")):
    c = cmd(p)
    if not c: continue
    name = os.path.basename(c[0].decode(errors="replace"))
    if name == "ctower-carrier-mock":
        try: parent = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
        except OSError: continue
        if parent == sys.argv[1]: mock += cpu(p)
    elif name.startswith("postgres"):
        try: cwd = os.readlink(f"/proc/{p}/cwd")
        except OSError: continue
        if cwd.startswith(sys.argv[2] + "/"): pg += cpu(p)
print(f"{disp:.2f} {mock:.2f} {pg:.2f}")
PY
}

phase1=$(python3 -c 'import uuid; print(uuid.uuid4())')
say "phase 1: $N messages, every check on, rate limits off"
t0=$(queue "$phase1" 10 9999.99 "$N" 512)
read -r d0 m0 p0 < <(cpu)
wait_done "$phase1" 600
read -r d1 m1 p1 < <(cpu)
cpu1=$(python3 -c "print(f'dispatcher {($d1 - $d0) * 1e6 / $N:.0f}, mock plugin {($m1 - $m0) * 1e6 / $N:.0f}, PostgreSQL {($p1 - $p0) * 1e6 / $N:.0f}')")
read -r sent1 span1 last1 < <(sql "SELECT count(*), extract(epoch FROM max(sent_at) - min(sent_at)), extract(epoch FROM max(sent_at)) FROM messages WHERE campaign_id = '$phase1' AND status = 'sent'" | tr '|' ' ')
statuses1=$(sql "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM messages WHERE campaign_id = '$phase1' GROUP BY status) s")
rate1=$(python3 -c "print(round(($sent1 - 1) / $span1))")
wall1=$(python3 -c "print(round($N / ($last1 - $t0)))")

if [[ -n ${DIAG:-} ]]; then
  psql "$db" -qAtX -c "SELECT relname, seq_scan, seq_tup_read, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables WHERE seq_tup_read > 10000 OR relname = 'messages'" \
    -c "SELECT indexrelname, idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes WHERE idx_tup_read > 10000 ORDER BY idx_tup_read DESC" >&2
  sql "EXPLAIN ANALYZE SELECT v.phone, ARRAY(SELECT COALESCE(x.sent_at, x.claimed_at) AS at FROM messages x WHERE x.org_id = '$org' AND x.to_phone = v.phone AND x.direction = 'outbound' AND x.status IN ('claimed', 'sending', 'sent', 'delivered', 'undelivered') AND COALESCE(x.sent_at, x.claimed_at) > now() - interval '24 hours' ORDER BY at DESC) FROM unnest(ARRAY(SELECT to_phone::text FROM messages WHERE org_id = '$org' LIMIT 50)) v(phone)" >&2
fi
paced=$((PACED_NUMBERS * PACED_MPS * PACED_SECONDS))
proc_cpu() { awk -v t="$(getconf CLK_TCK)" '{ split($0, a, ") "); split(a[2], f, " "); printf "%.2f", (f[12] + f[13]) / t }' "/proc/$1/stat"; }
for i in $(seq 2 "$PACED_DISPATCHERS"); do
  "$bin/ctower" serve --role dispatch --listen 127.0.0.1:0 --database-url "host=$CTOWER_HOME/postgres port=5432 dbname=ctower user=ctower_app" \
    --dispatch-batch-size "$BATCH" --dispatch-workers "$WORKERS" --log-level info >"$work/dispatch-$i.log" 2>&1 &
  extra+=($!)
  for _ in $(seq 1 300); do grep -q 'dispatcher started' "$work/dispatch-$i.log" && break; sleep 0.1; done
done
phase2=$(python3 -c 'import uuid; print(uuid.uuid4())')
say "phase 2: $paced messages through $PACED_NUMBERS numbers at $PACED_MPS MPS each, $PACED_DISPATCHERS dispatcher processes"
cpu_before=()
for p in $pid "${extra[@]}"; do cpu_before+=("$(proc_cpu "$p")"); done
queue "$phase2" "$PACED_NUMBERS" "$PACED_MPS" "$paced" 617 >/dev/null
wait_done "$phase2" $((PACED_SECONDS * 4 + 60))
read -r sent2 span2 < <(sql "SELECT count(*), extract(epoch FROM max(sent_at) - min(sent_at)) FROM messages WHERE campaign_id = '$phase2' AND status = 'sent'" | tr '|' ' ')
configured=$((PACED_NUMBERS * PACED_MPS))
per_process=$(i=0; for p in $pid "${extra[@]}"; do python3 -c "print(round($(proc_cpu "$p") - ${cpu_before[$i]}, 2), end=' ')"; i=$((i + 1)); done)
achieved=$(python3 -c "print(round(($sent2 - 1) / $span2, 2))")
ratio=$(python3 -c "print(round(($sent2 - 1) / $span2 / $configured, 4))")
# The same over the middle 80 % of the messages: free of the start-up lag of the first group.
middle=$(sql "
SELECT round((0.8 * count(*) / extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY sent_at)
                                               - percentile_disc(0.1) WITHIN GROUP (ORDER BY sent_at)) / $configured)::numeric, 4)
FROM messages WHERE campaign_id = '$phase2' AND status = 'sent'")
worst=$(sql "
SELECT round(max(abs((n - 1) / span / $PACED_MPS - 1))::numeric, 4) FROM (
  SELECT count(*) AS n, extract(epoch FROM max(sent_at) - min(sent_at)) AS span
  FROM messages WHERE campaign_id = '$phase2' AND status = 'sent' GROUP BY phone_number_id) s")

if [[ -n ${DIAG:-} ]]; then
  # The edges of the paced run: when each number's first and last messages were recorded.
  sql "SELECT to_char(min(sent_at), 'HH24:MI:SS.MS'), to_char(max(sent_at), 'HH24:MI:SS.MS'), count(*), substr(phone_number_id::text, 1, 8)
       FROM messages WHERE campaign_id = '$phase2' AND status = 'sent' GROUP BY phone_number_id ORDER BY 1" >&2
  sql "SELECT to_char(sent_at, 'HH24:MI:SS.MS'), substr(phone_number_id::text, 1, 8) FROM messages
       WHERE campaign_id = '$phase2' AND status = 'sent' ORDER BY sent_at LIMIT 30" | paste -sd' ' >&2
fi

say "checking the mock ledger against the messages table"
read -r ledger_lines ledger_keys < <(python3 -c "
keys = [l.split('\t')[0] for l in open('$work/ledger') if l.strip()]
print(len(keys), len(set(keys)))")
sent_total=$(sql "SELECT count(*) FROM messages WHERE status = 'sent'")
agree=no
[[ $ledger_lines == "$sent_total" && $ledger_keys == "$sent_total" ]] && agree=yes

cpu=$(nproc)
load=$(cut -d' ' -f1-3 /proc/loadavg)
table="| measurement | value |
|---|---|
| phase 1 messages (every check on, rate limits off) | $N ($statuses1) |
| phase 1 throughput, queue commit to last sent_at | **$wall1 messages/s** (target >= 5,000) |
| phase 1 throughput, first to last sent_at | $rate1 messages/s |
| phase 1 CPU per message (µs; includes the status poll) | $cpu1 |
| phase 2 configured rate ($PACED_DISPATCHERS dispatcher processes) | $PACED_NUMBERS numbers x $PACED_MPS MPS = $configured messages/s |
| phase 2 CPU seconds of each dispatcher process (all shared the work) | $per_process |
| phase 2 achieved rate ($sent2 messages), first to last | $achieved messages/s, ratio **$ratio** (target 0.98-1.02) |
| phase 2 achieved / configured, middle 80 % of messages | $middle |
| phase 2 worst single number, abs(ratio - 1) | $worst |
| ledger lines / distinct keys / sent rows | $ledger_lines / $ledger_keys / $sent_total (agree: $agree) |
| machine | $cpu CPUs, load average before the end $load |"
printf '%s\n' "$table"
{
  echo "# Dispatcher benchmark results"
  echo
  echo "\`Benchmarks/dispatch/run.sh\` on $(date -u +%Y-%m-%d) (N=$N, batch $BATCH, $WORKERS workers)."
  echo
  printf '%s\n' "$table"
} >"$RESULTS"
