#!/usr/bin/python3
"""The checks of scripts/test-outages (which starts PostgreSQL, the SMTP test server, remas, the exporters, Prometheus
and Alertmanager, and stops and starts the exporters). Each subcommand exits non-zero with a message when a check
fails; every wait is bounded.

  setup            nodes edge1 and edge2, an owner with a reservation running on each, a second admin, an API key of
                   scope `alerts` written to $OUTAGES_DIR/alerts.key (Alertmanager's credentials file)
  exporter PORT    a tiny exporter: answers /metrics until killed
  wait-up N...     until Prometheus has scraped the nodes' exporters as up
  check-down NODE  the node is down in GET /node/status; the owner and the admin got one mail each, and no more
                   while Alertmanager repeats the notification
  check-up NODE    the node is up again; one more mail each, and no more
"""
import datetime
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import exporter as exporter_lib  # noqa: E402

URL = os.environ.get("OUTAGES_URL", "")
MAIL = os.environ.get("OUTAGES_MAIL_DIR", "")
DIR = os.environ.get("OUTAGES_DIR", "")
OWNER = "owner@cluster.example"
BOSS = "boss@cluster.example"


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def call(method, path, body=None, token=None, form=None):
    headers = {}
    data = None
    if token:
        headers["Authorization"] = "Bearer " + token
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def login(username, password):
    status, body = call("POST", "/authentication/token", form={"username": username, "password": password})
    if status != 200:
        fail("login of %s: %s %s" % (username, status, body))
    return body["access_token"]


def ok(reply, what):
    status, body = reply
    if status not in (200, 201):
        fail("%s: %s %s" % (what, status, body))
    return body


def mails(address):
    folder = os.path.join(MAIL, address)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in sorted(os.listdir(folder)):
        if not name.startswith("."):
            with open(os.path.join(folder, name)) as f:
                found.append(json.load(f))
    return found


def wait(what, predicate, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    fail("waited %d s for %s" % (seconds, what))


def status_of(node):
    token = login("administrator", "admin")
    statuses = ok(call("GET", "/node/status", token=token), "GET /node/status")
    nodes = {n["id"]: n["name"] for n in ok(call("GET", "/node", token=token), "GET /node")}
    return {nodes[s["node_id"]]: s for s in statuses}[node]


def setup():
    admin = login("administrator", "admin")
    cpu = ok(call("POST", "/resource", {"name": "cpu", "unit": ""}, admin), "resource")["id"]
    now = datetime.datetime.now().replace(microsecond=0)  # TZ=UTC for remas and this script
    ok(call("POST", "/user", {"uid": 5001, "username": "owner", "email": OWNER, "password": "owner-pw", "name": "Ada",
                              "surname": None, "group_id": 3}, admin), "owner")
    ok(call("POST", "/user", {"uid": 5002, "username": "boss", "email": BOSS, "password": "boss-pw", "name": "Boss",
                              "surname": None, "group_id": 2}, admin), "second admin")
    owner = login("owner", "owner-pw")
    for name in ("edge1", "edge2"):
        node = ok(call("POST", "/node", {"name": name, "description": None}, admin), "node")["id"]
        ok(call("POST", "/node/add_resource", {"node_id": node, "resource_id": cpu, "amount": 8}, admin), "capacity")
        ok(call("POST", "/task", {
            "id": None, "name": "simulation on " + name, "description": None, "tag_ids": [],
            "start_time": (now - datetime.timedelta(minutes=1)).isoformat(),
            "end_time": (now + datetime.timedelta(hours=3)).isoformat(),
            "resource_allocations": [{"node_id": node, "resource_id": cpu, "amount": 2}]}, owner), "booking on " + name)
    key = ok(call("POST", "/apikey", {"name": "alertmanager", "scopes": ["alerts"]}, admin), "API key")["key"]
    with open(os.path.join(DIR, "alerts.key"), "w") as f:
        f.write(key + "\n")


def exporter(port):
    exporter_lib.serve(port, lambda: "# TYPE outage_test_exporter gauge\noutage_test_exporter 1\n")


def wait_up(nodes):
    prom = os.environ["OUTAGES_PROM"]

    def all_up():
        query = urllib.parse.urlencode({"query": 'up{node!=""}'})
        with urllib.request.urlopen(prom + "/api/v1/query?" + query, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        up = {r["metric"]["node"] for r in result if r["value"][1] == "1"}
        return set(nodes) <= up
    wait("Prometheus to scrape %s as up" % ", ".join(nodes), all_up)


def subjects(address):
    return [m["subject"] for m in mails(address)]


def check_down(node):
    wait("%s to be down in GET /node/status" % node, lambda: status_of(node)["status"] == "down")
    status = status_of(node)
    if status["source"] != "alertmanager":
        fail("the down status came from %r" % status["source"])
    if status_of("edge2")["status"] == "down":
        fail("edge2 is down too")
    subject = "Node %s is down" % node
    wait("the owner's mail", lambda: subject in subjects(OWNER), 30)
    wait("the admin's mail", lambda: subject in subjects(BOSS), 30)
    body = [m for m in mails(OWNER) if m["subject"] == subject][0]["body"]
    if "simulation on %s" % node not in body or "simulation on edge2" in body:
        fail("the owner's mail does not list exactly the reservation on %s: %r" % (node, body))
    if "(reported by alertmanager)" not in body:
        fail("the owner's mail does not name the source: %r" % body)
    # Alertmanager repeats the notification every 2 s: nobody is mailed twice.
    time.sleep(8)
    for address in (OWNER, BOSS):
        if subjects(address) != [subject]:
            fail("%s got %r, expected one %r" % (address, subjects(address), subject))


def check_up(node):
    wait("%s to be up in GET /node/status" % node, lambda: status_of(node)["status"] == "up")
    subject = "Node %s is up again" % node
    wait("the owner's mail", lambda: subject in subjects(OWNER), 30)
    wait("the admin's mail", lambda: subject in subjects(BOSS), 30)
    time.sleep(6)
    for address in (OWNER, BOSS):
        got = subjects(address)
        if sorted(got) != sorted(["Node %s is down" % node, subject]):
            fail("%s got %r, expected one down and one up mail" % (address, got))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "setup":
        setup()
    elif command == "exporter":
        exporter(args[0])
    elif command == "wait-up":
        wait_up(args)
    elif command == "check-down":
        check_down(args[0])
    elif command == "check-up":
        check_up(args[0])
    else:
        fail("unknown command " + command)


if __name__ == "__main__":
    main()
