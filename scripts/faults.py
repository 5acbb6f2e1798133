#!/usr/bin/python3
"""The load and the checks of scripts/test-faults (which starts PostgreSQL, the SMTP test server, the replicas and
nginx, and does the killing and restarting). Each subcommand reads and writes JSON state in $FAULTS_DIR and exits
non-zero with a message when a check fails.

  setup        users, nodes, a reminder due in a few seconds for every user (one user's address hangs at RCPT)
  storm        >= 200 concurrent clients booking overlapping windows on 3 nodes through nginx until $FAULTS_DIR/stop
  check-storm  no instant over any capacity; every 2xx stored whole; every refusal left nothing
  wait-hang    waits until the hanging reminder is held at RCPT and every other reminder is sent; prints the port of
               the SMTP client holding it
  check-mail   every reminder mailed exactly once across the replicas (the killed one's claim included)
  load         GET /node and bookings through nginx until $FAULTS_DIR/stop (PostgreSQL is restarted meanwhile)
  check-load   only 2xx and 503-with-detail answers, 503s seen while PostgreSQL was down, recovery, nothing half-written
  slow         slow clients and a 10 MB body against a replica and through nginx while other requests go on
  check-failover  (scripts/test-failover; after `load` with FAULTS_CONTEND=1 while the primary was killed) only 2xx,
               409 and 503-with-detail answers, none slow, all 2xx again within 30 s of the kill, every acknowledged
               booking in the new primary and none twice, no instant over capacity

FAULTS_REMINDER_SECONDS (default 6) puts the reminders that many seconds after setup; FAULTS_HANG=0 gives no user the
address that hangs at RCPT.
"""
import datetime
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

DIR = os.environ["FAULTS_DIR"]
BASE = urllib.parse.urlsplit(os.environ["FAULTS_BASE"])  # nginx
PSQL = ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"] + os.environ["FAULTS_PSQL"].split()
MAIL = os.environ["FAULTS_MAIL_DIR"]
OFFSET = 600  # the reminder's time_offset: seconds before the start
NGINX_UNAVAILABLE = "Service unavailable: no remas replica answered"  # deploy/nginx/remas.conf, when no replica answered


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix domain socket (a replica's SOCKET_PATH)."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = connect_raw(unix=self.unix_path, timeout=self.timeout)


def connect_raw(host=None, port=None, unix=None, timeout=30):
    """A plain socket to nginx (host, port) or to a replica's Unix socket."""
    if unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(unix)
        return s
    return socket.create_connection((host, port), timeout=timeout)


def request(method, path, token=None, body=None, form=None, host=None, port=None, unix=None, timeout=30):
    """One request on a fresh connection: (status, parsed JSON or None, raw text). Transport errors give status 0."""
    headers = {}
    data = None
    if token:
        headers["Authorization"] = "Bearer " + token
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if unix:
        conn = UnixHTTPConnection(unix, timeout)
    else:
        conn = http.client.HTTPConnection(host or BASE.hostname, port or BASE.port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        return response.status, parsed, text
    except (OSError, http.client.HTTPException) as error:
        return 0, None, repr(error)
    finally:
        conn.close()


def sql(query):
    return subprocess.run(PSQL + ["-c", query], check=True, capture_output=True, text=True).stdout.strip()


def save(name, value):
    with open(os.path.join(DIR, name), "w") as f:
        json.dump(value, f)


def load(name):
    with open(os.path.join(DIR, name)) as f:
        return json.load(f)


def must(status, parsed, text, what):
    if status != 200 and status != 201:
        fail("%s: %s %s" % (what, status, text[:300]))
    return parsed


def login(username, password):
    status, parsed, text = request("POST", "/authentication/token", form={"username": username, "password": password})
    return must(status, parsed, text, "login " + username)["access_token"]


def now_utc():
    # The replicas run with TZ=UTC, so task times are UTC wall-clock times.
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def stopped():
    return os.path.exists(os.path.join(DIR, "stop"))


# ---------------------------------------------------------------------------------------------------------------------

def setup():
    admin = login("administrator", "admin")
    cpu = must(*request("POST", "/resource", admin, {"name": "cpu", "unit": ""}), "resource")["id"]
    nodes = []
    for name in ["storm-a", "storm-b", "storm-c", "reminders"]:
        node = must(*request("POST", "/node", admin, {"name": name}), "node")["id"]
        amount = 1000 if name == "reminders" else 8
        must(*request("POST", "/node/add_resource", admin, {"node_id": node, "resource_id": cpu, "amount": amount}), "capacity")
        nodes.append(node)
    users = []
    for i in range(20):
        username = "storm%02d" % i
        hang = i == 0 and os.environ.get("FAULTS_HANG", "1") != "0"
        email = ("hang-storm%02d@cluster.example" if hang else "storm%02d@cluster.example") % i
        must(*request("POST", "/user", admin, {"uid": 20000 + i, "username": username, "email": email, "password": "password"}), "user")
        users.append({"username": username, "email": email, "token": login(username, "password")})
    notification = must(*request("POST", "/notification", admin, {
        "name": "storm reminder", "type": "task_start", "time_offset": OFFSET,
        "notification_template": "Your task ${task_name} starts at ${task_start}."}), "notification")["id"]
    must(*request("POST", "/notification/assign", admin, {"notification_id": notification, "group_id": 3}), "assign")
    # Every user books a task on the reminders node whose reminder falls due a few seconds from now.
    start = now_utc() + datetime.timedelta(seconds=OFFSET + int(os.environ.get("FAULTS_REMINDER_SECONDS", "6")))
    for user in users:
        must(*request("POST", "/task", user["token"], {
            "id": None, "name": "remind " + user["username"], "description": None, "tag_ids": [],
            "resource_allocations": [{"node_id": nodes[3], "resource_id": cpu, "amount": 1}],
            "start_time": start.isoformat(), "end_time": (start + datetime.timedelta(hours=1)).isoformat()}), "reminder task")
    save("setup.json", {"cpu": cpu, "nodes": nodes[:3], "users": users, "notification": notification})
    print("setup: 20 users, 3 storm nodes of 8 cpu, 20 reminders due at %s UTC" % (start - datetime.timedelta(seconds=OFFSET)))


def over_capacity(nodes):
    """How many allocation starts on the nodes see more reserved than the node provides."""
    return sql("""
        SELECT count(*) FROM (
            SELECT p.node_id, p.resource_id, p.start_time, sum(b.amount) AS used
            FROM (SELECT DISTINCT node_id, resource_id, start_time FROM allocations WHERE node_id IN (%s)) p
            JOIN allocations b ON b.node_id = p.node_id AND b.resource_id = p.resource_id
                 AND b.start_time <= p.start_time AND b.end_time > p.start_time
            GROUP BY 1, 2, 3) s
        JOIN node_resources nr ON nr.node_id = s.node_id AND nr.resource_id = s.resource_id
        WHERE s.used > nr.amount""" % ",".join(str(n) for n in nodes))


def storm():
    state = load("setup.json")
    outcomes = []
    lock = threading.Lock()
    barrier = threading.Barrier(200)
    counter = [0]

    def worker(w):
        rng = random.Random(w)
        user = state["users"][w % len(state["users"])]
        barrier.wait()
        while not stopped():
            with lock:
                counter[0] += 1
                n = counter[0]
            node = rng.choice(state["nodes"])
            begin = datetime.datetime(2031, 5, 1, 8) + datetime.timedelta(minutes=15 * rng.randrange(0, 32))
            end = begin + datetime.timedelta(minutes=15 * rng.randrange(1, 13))
            amount = rng.randrange(1, 5)
            name = "storm-%d" % n
            status, parsed, text = request("POST", "/task", user["token"], {
                "id": None, "name": name, "description": None, "tag_ids": [],
                "resource_allocations": [{"node_id": node, "resource_id": state["cpu"], "amount": amount}],
                "start_time": begin.isoformat(), "end_time": end.isoformat()})
            with lock:
                outcomes.append({"name": name, "node": node, "amount": amount, "start": begin.isoformat(), "end": end.isoformat(),
                                 "status": status, "id": (parsed or {}).get("id") if status == 200 else None,
                                 "detail": (parsed or {}).get("detail") if isinstance(parsed, dict) else None,
                                 "text": text[:200] if status not in (200, 409) else ""})

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    save("storm.json", outcomes)
    by_status = {}
    for o in outcomes:
        by_status[o["status"]] = by_status.get(o["status"], 0) + 1
    print("storm: %d bookings from 200 concurrent clients: %s" % (len(outcomes), json.dumps(by_status, sort_keys=True)))


def check_storm():
    outcomes = load("storm.json")
    state = load("setup.json")
    # 1. No instant over capacity: at every allocation start, the overlapping amounts of its node fit.
    over = over_capacity(state["nodes"])
    if over != "0":
        fail("%s instants over capacity" % over)
    # 2. Nothing half-written anywhere: every task has its allocation, every allocation its task's times.
    no_orphans("after the storm")
    stored = {}
    for line in sql("""SELECT t.name, t.id, a.node_id, a.amount, to_char(t.start_time, 'YYYY-MM-DD"T"HH24:MI:SS'),
                              to_char(t.end_time, 'YYYY-MM-DD"T"HH24:MI:SS')
                       FROM tasks t JOIN allocations a ON a.task_id = t.id WHERE t.name LIKE 'storm-%'""").splitlines():
        name, tid, node, amount, start, end = line.split("|")
        if name in stored:
            fail("%s stored twice" % name)
        stored[name] = (int(tid), int(node), int(amount), start, end)
    counts = {"ok": 0, "refused": 0, "failed_nothing": 0, "ambiguous_stored": 0, "ambiguous_absent": 0}
    for o in outcomes:
        want = (o["node"], o["amount"], o["start"], o["end"])
        got = stored.get(o["name"])
        if o["status"] == 200:
            if got is None or got[0] != o["id"] or got[1:] != want:
                fail("2xx booking %s not stored as answered: %s" % (o["name"], got))
            counts["ok"] += 1
        elif isinstance(o["detail"], str) and not o["detail"].startswith(NGINX_UNAVAILABLE):
            # Refused or failed by remas itself (409 over capacity, 503 ...): it must have left nothing.
            if got is not None:
                fail("%s answered %s (%s) but was stored" % (o["name"], o["status"], o["detail"]))
            counts["refused" if o["status"] < 500 else "failed_nothing"] += 1
        else:
            # The replica died under this request (nginx's own 503, or a reset connection): the transaction either
            # committed before the kill or not at all; it must be whole or absent.
            if got is not None and got[1:] != want:
                fail("%s (cut off) stored differently: %s" % (o["name"], got))
            counts["ambiguous_stored" if got else "ambiguous_absent"] += 1
    if len(outcomes) < 200:
        fail("only %d bookings in the storm" % len(outcomes))
    if counts["ok"] == 0 or counts["refused"] == 0:
        fail("the storm did not both fill and overfill the nodes: %s" % counts)
    print("check-storm: no instant over capacity, nothing half-written; %s" % json.dumps(counts, sort_keys=True))


def wait_hang():
    """The kill must hit a replica while it holds a claimed, undelivered reminder. Every other reminder is recorded as
    sent first: a process killed between the SMTP server's 250 and its own COMMIT has delivered a mail it could not
    record, and no mail protocol lets anyone tell that apart from a mail never sent (RFC 1047), so that instant is not
    what this test is about."""
    state = load("setup.json")
    marker = os.path.join(MAIL, "hanging-" + state["users"][0]["email"])
    others = len(state["users"]) - 1
    deadline = time.time() + 60
    sent = "0"
    while time.time() < deadline:
        sent = sql("SELECT count(*) FROM events e JOIN tasks t ON t.id = e.task_id JOIN users u ON u.id = t.owner_id"
                   " WHERE e.notification_id = %d AND t.name LIKE 'remind %%' AND e.state = 'sent' AND u.email NOT LIKE 'hang-%%'"
                   % state["notification"])
        if os.path.exists(marker) and sent == str(others):
            with open(marker) as f:
                print(f.read().strip())
            return
        time.sleep(0.1)
    fail("the hanging reminder was not held (%s) or not all %d others were sent (%s)" % (os.path.exists(marker), others, sent))


def check_mail():
    state = load("setup.json")
    deadline = time.time() + 90
    while time.time() < deadline:
        left = sql("SELECT count(*) FROM events e JOIN tasks t ON t.id = e.task_id WHERE e.notification_id = %d"
                   " AND t.name LIKE 'remind %%' AND e.state = 'pending'" % state["notification"])
        if left == "0":
            break
        time.sleep(0.5)
    else:
        fail("reminders still pending: " + left)
    time.sleep(2)  # a duplicate would arrive now
    problems = []
    for user in state["users"]:
        folder = os.path.join(MAIL, user["email"])
        count = len([f for f in os.listdir(folder) if f.endswith(".json")]) if os.path.isdir(folder) else 0
        if count != 1:
            problems.append("%s got %d" % (user["email"], count))
    states = sql("SELECT e.state || ':' || count(*) FROM events e JOIN tasks t ON t.id = e.task_id WHERE e.notification_id = %d"
                 " AND t.name LIKE 'remind %%' GROUP BY e.state" % state["notification"])
    if problems:
        fail("reminders not mailed exactly once: %s (events %s)" % (", ".join(problems), states.replace("\n", " ")))
    print("check-mail: 20 reminders, each mailed exactly once across the replicas (events: %s)" % states.replace("\n", " "))


def load_phase():
    state = load("setup.json")
    token = state["users"][1]["token"]
    records = []
    lock = threading.Lock()

    def reader():
        while not stopped():
            started = time.time()
            status, parsed, text = request("GET", "/node", token, timeout=20)
            with lock:
                records.append({"t": started, "kind": "read", "status": status, "seconds": time.time() - started,
                                "detail": parsed.get("detail") if isinstance(parsed, dict) else None, "text": text[:120]})
            time.sleep(0.02)

    contend = os.environ.get("FAULTS_CONTEND") == "1"

    def writer(w):
        n = 0
        rng = random.Random(w)
        while not stopped():
            n += 1
            name = "load-%d-%d" % (w, n)
            node, amount = state["nodes"][w % 3], 1
            begin = datetime.datetime(2032, 1, 1) + datetime.timedelta(hours=w * 10000 + n)
            if contend:
                # Overlapping slots of one day on the three nodes: the nodes fill, then refuse (409).
                node, amount = rng.choice(state["nodes"]), rng.randrange(1, 5)
                begin = datetime.datetime(2032, 6, 1, 8) + datetime.timedelta(minutes=15 * rng.randrange(0, 40))
            started = time.time()
            status, parsed, text = request("POST", "/task", token, {
                "id": None, "name": name, "description": None, "tag_ids": [],
                "resource_allocations": [{"node_id": node, "resource_id": state["cpu"], "amount": amount}],
                "start_time": begin.isoformat(), "end_time": (begin + datetime.timedelta(minutes=30)).isoformat()}, timeout=20)
            with lock:
                records.append({"t": started, "kind": "write", "name": name, "status": status, "seconds": time.time() - started,
                                "id": parsed.get("id") if isinstance(parsed, dict) else None,
                                "detail": parsed.get("detail") if isinstance(parsed, dict) else None, "text": text[:120]})
            time.sleep(0.05)

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    save("load.json", records)
    print("load: %d requests" % len(records))


def answered(records, allowed, errors):
    """The load's answers: only `allowed` statuses, each of `errors` with a string detail, and some 503s (returned)."""
    bad = [r for r in records if r["status"] not in allowed or (r["status"] in errors and not isinstance(r["detail"], str))]
    if bad:
        fail("answers other than %s (those of %s with a detail; a 0 is a timeout or a reset): %s"
             % (sorted(allowed), sorted(errors), json.dumps(bad[:5])))
    unavailable = [r for r in records if r["status"] == 503]
    if not unavailable:
        fail("no 503 while PostgreSQL was unavailable")
    return unavailable


def acknowledged(records, when):
    """Every booking of the load answered 200 is stored once, with the id it was answered with; returns the names
    stored although not acknowledged (a COMMIT carried out while the server went, its answer lost: checked whole by
    `no_orphans`)."""
    stored = {}
    for line in sql("SELECT name, id FROM tasks WHERE name LIKE 'load-%'").splitlines():
        name, tid = line.split("|")
        if name in stored:
            fail("%s stored twice" % name)
        stored[name] = int(tid)
    lost_acks = []
    for r in records:
        if r["kind"] != "write":
            continue
        if r["status"] == 200:
            if stored.get(r["name"]) != r["id"]:
                fail("%s was acknowledged (id %s) but %s has %s" % (r["name"], r["id"], when, stored.get(r["name"])))
        elif r["name"] in stored:
            lost_acks.append(r["name"])
    return lost_acks


def no_orphans(when):
    """Nothing half-written: every task has its allocations, and every allocation and event of a task names one that
    exists (a trigger, not a foreign key, ties them since migration 0019)."""
    orphans = sql("SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM allocations a WHERE a.task_id = t.id)")
    if orphans != "0":
        fail("%s tasks without allocations %s" % (orphans, when))
    for table in ("allocations", "events"):
        strays = sql("SELECT count(*) FROM %s r WHERE r.task_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = r.task_id)" % table)
        if strays != "0":
            fail("%s %s of tasks that do not exist %s" % (strays, table, when))


def check_load():
    records = sorted(load("load.json"), key=lambda r: r["t"])
    down = load("pg-restart.json")  # {"stopped": t0, "started": t1}
    unavailable = answered(records, {200, 503}, {503})
    slow = [r for r in unavailable if r["seconds"] > 5]
    if slow:
        fail("503s did not fail fast: %s" % json.dumps(slow[:3]))
    after = [r for r in records if r["t"] > down["started"] + 5]
    if not after or any(r["status"] != 200 for r in after):
        fail("the pool did not recover 5 s after PostgreSQL was back: %s" % json.dumps([r for r in after if r["status"] != 200][:3]))
    # remas reads the answer inside the booking's transaction, so a 503 means the transaction failed; only a COMMIT
    # that PostgreSQL carried out while it was being stopped, without acknowledging it, is stored unacknowledged.
    lost_acks = acknowledged(records, "the database")
    no_orphans("after the restart")
    print("check-load: %d requests, %d answered 503 with a detail (max %.2f s) while PostgreSQL restarted, all OK after;"
          " %d commits without acknowledgement (stored whole)"
          % (len(records), len(unavailable), max(r["seconds"] for r in unavailable), len(lost_acks)))


def check_failover():
    records = sorted(load("load.json"), key=lambda r: r["t"])
    state = load("setup.json")
    event = load("failover.json")  # {"killed": t0, "promoted": t1}
    killed = event["killed"]
    unavailable = answered(records, {200, 409, 503}, {409, 503})
    slow = [r for r in records if r["seconds"] > 5]
    if slow:
        fail("answers slower than 5 s (a request waited for a dead server): %s" % json.dumps(slow[:3]))
    last_bad = max(r["t"] + r["seconds"] for r in unavailable)
    recovered = last_bad - killed
    after = [r for r in records if r["t"] > last_bad]
    if recovered > 30 or not after:
        fail("remas answered 503 until %.1f s after the kill (want < 30 s, then answers)" % recovered)
    lost_acks = acknowledged(records, "the new primary")
    over = over_capacity(state["nodes"])
    if over != "0":
        fail("%s instants over capacity" % over)
    no_orphans("after the failover")
    refused = len([r for r in records if r["status"] == 409])
    print("check-failover: %d requests (%d bookings acknowledged, all in the new primary, none twice; %d refused as full;"
          " no instant over capacity); %d answered 503 with a detail (max %.2f s); answering again %.1f s after the kill"
          " (Patroni promoted at %.1f s); %d commits without acknowledgement (stored whole)"
          % (len(records), len([r for r in records if r["kind"] == "write" and r["status"] == 200]), refused,
             len(unavailable), max(r["seconds"] for r in unavailable), recovered, event["promoted"] - killed, len(lost_acks)))


def slow():
    state = load("setup.json")
    token = state["users"][1]["token"]
    results = {}
    endpoints = [("replica", {"unix": os.environ["FAULTS_REPLICA_SOCKET"]}), ("nginx", {"host": BASE.hostname, "port": BASE.port})]
    for label, where in endpoints:
        # 50 clients that trickle a request header, one byte every 200 ms.
        trickle_stop = threading.Event()

        def trickle():
            try:
                s = connect_raw(**where)
                for b in b"GET /node HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                    if trickle_stop.is_set():
                        break
                    s.send(bytes([b]))
                    time.sleep(0.2)
                s.close()
            except OSError:
                pass

        slowpokes = [threading.Thread(target=trickle) for _ in range(50)]
        for t in slowpokes:
            t.start()
        # A 10 MB body, sent as fast as the server takes it.
        big = {}

        def upload():
            started = time.time()
            status, parsed, text = request("POST", "/task", token, {"name": "x" * (10 * 1024 * 1024)}, **where)
            big.update(status=status, detail=(parsed or {}).get("detail") if isinstance(parsed, dict) else None,
                       seconds=time.time() - started, text=text[:120])

        uploader = threading.Thread(target=upload)
        uploader.start()
        time.sleep(0.3)
        latencies = []
        for _ in range(100):
            started = time.time()
            status, _, text = request("GET", "/node", token, timeout=10, **where)
            if status != 200:
                fail("%s: GET /node answered %s beside slow clients: %s" % (label, status, text[:200]))
            latencies.append(time.time() - started)
        uploader.join(60)
        trickle_stop.set()
        for t in slowpokes:
            t.join(30)
        if big.get("status") != 413 or not isinstance(big.get("detail"), str):
            fail("%s: a 10 MB body was answered %s" % (label, big))
        latencies.sort()
        results[label] = "413 with detail in %.2f s; 100 x GET /node beside 50 slow clients: p50 %.1f ms, max %.1f ms" % (
            big["seconds"], latencies[50] * 1000, latencies[-1] * 1000)
    print("slow: " + "; ".join("%s: %s" % kv for kv in results.items()))


if __name__ == "__main__":
    {"setup": setup, "storm": storm, "check-storm": check_storm, "check-mail": check_mail, "load": load_phase,
     "check-load": check_load, "wait-hang": wait_hang, "slow": slow, "check-failover": check_failover}[sys.argv[1]]()
