#!/usr/bin/python3
"""A stand-in for Grafana's HTTP API in tests, benchmarks and the deployment test (Grafana cannot be installed here).

It keeps alert rules, folders (with permissions), contact points and users in memory and validates every request the
way Grafana's provisioning and admin APIs do for the calls remas makes: Basic auth against the configured admin,
JSON bodies, the required fields of an alert rule (title, ruleGroup, folderUID of an existing folder, condition
naming a refId of `data`, for, noDataState, execErrState, orgID), titles unique per folder and rule group, folder
deletion refused while the folder holds rules, unique logins, known ids. A request it cannot place is answered 404
and recorded, so tests can assert that remas made no call Grafana would not understand.

Control endpoints (no auth), under /_fake:
  GET  /_fake/state           everything it holds, the call counts per route and every refused request
  POST /_fake/mode            {"fail": <status or null>, "hang": <bool>}: answer every API call with that status,
                              or hold it until the mode changes (then answer 503)
  POST /_fake/reset           forget everything

Usage: fake-grafana.py [--port N] [--bind ADDR] [--user U] [--password P]
Prints "listening on <port>" on stdout once it accepts connections.
"""
import argparse
import base64
import json
import os
import re
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

NO_DATA_STATES = {"Alerting", "NoData", "OK", "KeepLast"}
EXEC_ERR_STATES = {"OK", "Alerting", "Error", "KeepLast"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$|^0$")


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class State:
    def __init__(self):
        self.lock = threading.Condition()
        self.reset()

    def reset(self):
        self.rules = {}  # uid -> rule
        self.titles = {}  # (folderUID, ruleGroup, title) -> uid: titles are unique per folder and group
        self.folders = {}  # uid -> {"uid", "title", "id"}
        self.permissions = {}  # folder uid -> [items]
        self.contact_points = {}  # uid -> point
        self.users = {}  # id -> user
        self.next_id = 2
        self.calls = {}
        self.refused = []
        self.unknown = []
        self.fail = None
        self.hang = False
        # user 1 is the server admin remas signs in with
        self.users[1] = {"id": 1, "login": ARGS.user, "email": "admin@localhost", "name": "", "isGrafanaAdmin": True,
                         "isDisabled": False, "password": ARGS.password}

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def dump(self):
        users = [{k: v for k, v in u.items() if k != "password"} | {"passwordSet": bool(u.get("password"))}
                 for u in self.users.values()]
        return {"rules": list(self.rules.values()), "folders": list(self.folders.values()),
                "permissions": self.permissions, "contactPoints": list(self.contact_points.values()),
                "users": users, "passwords": {u["login"]: u.get("password") for u in self.users.values()},
                "calls": self.calls, "refused": self.refused, "unknown": self.unknown}


def need(cond, message, status=400):
    if not cond:
        raise Refused(status, message)


def validate_rule(state, rule, uid=None):
    need(isinstance(rule, dict), "alert rule must be an object")
    need(isinstance(rule.get("title"), str) and rule["title"].strip(), "title is required")
    need(isinstance(rule.get("ruleGroup"), str) and rule["ruleGroup"].strip(), "ruleGroup is required")
    need(isinstance(rule.get("folderUID"), str) and rule["folderUID"], "folderUID is required")
    need(rule["folderUID"] in state.folders, "folder does not exist: %s" % rule["folderUID"], 400)
    data = rule.get("data")
    need(isinstance(data, list) and data, "data is required")
    refs = []
    for query in data:
        need(isinstance(query, dict) and isinstance(query.get("refId"), str) and query["refId"], "every query needs a refId")
        need(isinstance(query.get("datasourceUid"), str) and query["datasourceUid"], "every query needs a datasourceUid")
        need(isinstance(query.get("model"), dict), "every query needs a model")
        refs.append(query["refId"])
    need(len(set(refs)) == len(refs), "refIds must be unique")
    need(rule.get("condition") in refs, "condition must name a refId of data")
    need(isinstance(rule.get("for"), str) and DURATION.match(rule["for"]), "for must be a duration")
    need(rule.get("noDataState") in NO_DATA_STATES, "invalid noDataState")
    need(rule.get("execErrState") in EXEC_ERR_STATES, "invalid execErrState")
    need(isinstance(rule.get("orgID"), int) and not isinstance(rule.get("orgID"), bool) and rule["orgID"] >= 1, "orgID is required")
    for key in ("labels", "annotations"):
        value = rule.get(key)
        need(value is None or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())),
             "%s must map strings to strings" % key)
    settings = rule.get("notification_settings")
    if settings is not None:
        need(isinstance(settings, dict) and isinstance(settings.get("receiver"), str), "notification_settings.receiver is required")
        need(any(p["name"] == settings["receiver"] for p in state.contact_points.values()),
             "receiver does not exist: %s" % settings["receiver"])
    holder = state.titles.get((rule["folderUID"], rule["ruleGroup"], rule["title"]))
    if holder is not None and holder != uid:
        raise Refused(409, "a rule with this title already exists in this folder and group")


def forget_rule(state, uid):
    old = state.rules.pop(uid, None)
    if old is not None:
        state.titles.pop((old["folderUID"], old["ruleGroup"], old["title"]), None)


def store_rule(state, rule, uid):
    old_id = state.rules.get(uid, {}).get("id")
    forget_rule(state, uid)
    stored = dict(rule)
    stored["uid"] = uid
    stored["id"] = old_id or state.new_id()
    stored["provenance"] = "api"
    stored.setdefault("labels", {})
    stored.setdefault("annotations", {})
    state.rules[uid] = stored
    state.titles[(stored["folderUID"], stored["ruleGroup"], stored["title"])] = uid
    return stored


def handle_api(state, method, path, query, body, user):
    parts = [unquote(p) for p in path.strip("/").split("/")]
    # alert rules
    if parts[:4] == ["api", "v1", "provisioning", "alert-rules"]:
        if len(parts) == 4 and method == "GET":
            return 200, list(state.rules.values()), "GET alert-rules"
        if len(parts) == 4 and method == "POST":
            validate_rule(state, body)
            uid = body.get("uid") or uuid.uuid4().hex[:14]
            need(uid not in state.rules, "uid already used", 409)
            return 201, store_rule(state, body, uid), "POST alert-rules"
        if len(parts) == 5:
            uid = parts[4]
            if method == "PUT":
                need(uid in state.rules, "rule not found", 404)
                validate_rule(state, body, uid)
                return 200, store_rule(state, body, uid), "PUT alert-rules/{uid}"
            if method == "DELETE":
                forget_rule(state, uid)
                return 204, None, "DELETE alert-rules/{uid}"
    # folders
    if parts[:2] == ["api", "folders"]:
        if len(parts) == 2 and method == "GET":
            return 200, [{"id": f["id"], "uid": f["uid"], "title": f["title"]} for f in state.folders.values()], "GET folders"
        if len(parts) == 2 and method == "POST":
            need(isinstance(body, dict) and isinstance(body.get("title"), str) and body["title"].strip(), "folder title is required")
            need(all(f["title"] != body["title"] for f in state.folders.values()),
                 "a folder with the same name already exists", 409)
            uid = body.get("uid") or uuid.uuid4().hex[:14]
            folder = {"id": state.new_id(), "uid": uid, "title": body["title"]}
            state.folders[uid] = folder
            state.permissions[uid] = [{"role": "Editor", "permission": 2, "userId": 0, "teamId": 0},
                                      {"role": "Viewer", "permission": 1, "userId": 0, "teamId": 0}]
            return 200, folder, "POST folders"
        if len(parts) == 3 and method == "DELETE":
            uid = parts[2]
            need(uid in state.folders, "folder not found", 404)
            need(not any(r["folderUID"] == uid for r in state.rules.values()),
                 "folder cannot be deleted: folder contains alert rules")
            del state.folders[uid]
            state.permissions.pop(uid, None)
            return 200, {"message": "Folder deleted"}, "DELETE folders/{uid}"
        if len(parts) == 4 and parts[3] == "permissions":
            uid = parts[2]
            need(uid in state.folders, "folder not found", 404)
            if method == "GET":
                return 200, [dict(i, title=state.folders[uid]["title"]) for i in state.permissions[uid]], "GET folders/{uid}/permissions"
            if method == "POST":
                need(isinstance(body, dict) and isinstance(body.get("items"), list), "items is required")
                items = []
                for item in body["items"]:
                    need(isinstance(item, dict) and item.get("permission") in (1, 2, 4), "permission must be 1, 2 or 4")
                    who = [k for k in ("userId", "teamId", "role") if item.get(k)]
                    need(len(who) == 1, "an item names exactly one of userId, teamId, role")
                    if "userId" in who:
                        need(item["userId"] in state.users, "user not found", 404)
                    items.append({"role": item.get("role", ""), "permission": item["permission"],
                                  "userId": item.get("userId", 0), "teamId": item.get("teamId", 0)})
                state.permissions[uid] = items
                return 200, {"message": "Folder permissions updated"}, "POST folders/{uid}/permissions"
    # contact points
    if parts[:4] == ["api", "v1", "provisioning", "contact-points"]:
        def check_point(point):
            need(isinstance(point, dict) and isinstance(point.get("name"), str) and point["name"], "name is required")
            need(point.get("type") == "email", "only email contact points are expected")
            settings = point.get("settings")
            need(isinstance(settings, dict) and isinstance(settings.get("addresses"), str) and settings["addresses"],
                 "settings.addresses is required")
        if len(parts) == 4 and method == "GET":
            return 200, list(state.contact_points.values()), "GET contact-points"
        if len(parts) == 4 and method == "POST":
            check_point(body)
            uid = body.get("uid") or uuid.uuid4().hex[:14]
            point = dict(body, uid=uid)
            state.contact_points[uid] = point
            return 202, point, "POST contact-points"
        if len(parts) == 5:
            uid = parts[4]
            if method == "PUT":
                need(uid in state.contact_points, "contact point not found", 404)
                check_point(body)
                state.contact_points[uid] = dict(body, uid=uid)
                return 202, {"message": "contactpoint updated"}, "PUT contact-points/{uid}"
            if method == "DELETE":
                names = state.contact_points.get(uid, {}).get("name")
                need(not any((r.get("notification_settings") or {}).get("receiver") == names for r in state.rules.values()),
                     "contact point is used by a rule", 409)
                state.contact_points.pop(uid, None)
                return 202, {"message": "contactpoint deleted"}, "DELETE contact-points/{uid}"
    # users
    if parts == ["api", "users", "lookup"] and method == "GET":
        login = (query.get("loginOrEmail") or [""])[0]
        for u in state.users.values():
            if u["login"] == login or u["email"] == login:
                return 200, {k: v for k, v in u.items() if k != "password"}, "GET users/lookup"
        return 404, {"message": "user not found"}, "GET users/lookup"
    if parts == ["api", "admin", "users"] and method == "POST":
        need(isinstance(body, dict) and isinstance(body.get("login"), str) and body["login"], "login is required")
        need(isinstance(body.get("password"), str) and len(body["password"]) >= 4, "password is required (at least 4 characters)")
        need(isinstance(body.get("email"), str), "email must be a string")
        need(all(u["login"] != body["login"] for u in state.users.values()), "user with same login already exists", 412)
        uid = state.new_id()
        state.users[uid] = {"id": uid, "login": body["login"], "email": body.get("email", ""), "name": body.get("name", ""),
                            "isGrafanaAdmin": False, "isDisabled": False, "password": body["password"]}
        return 200, {"id": uid, "message": "User created"}, "POST admin/users"
    if len(parts) >= 3 and parts[:2] in (["api", "users"], ["api", "admin"]):
        m_user = re.fullmatch(r"\d+", parts[2]) if parts[1] == "users" else None
        if m_user and len(parts) == 3 and method == "PUT":
            uid = int(parts[2])
            need(uid in state.users, "user not found", 404)
            need(isinstance(body, dict) and isinstance(body.get("login"), str), "login is required")
            need(all(u["login"] != body["login"] or u["id"] == uid for u in state.users.values()), "login taken", 412)
            user_rec = state.users[uid]
            user_rec.update({"login": body["login"], "email": body.get("email", user_rec["email"]), "name": body.get("name", user_rec["name"])})
            return 200, {"message": "User updated"}, "PUT users/{id}"
        if parts[1] == "admin" and len(parts) >= 4 and parts[2] == "users" and re.fullmatch(r"\d+", parts[3]):
            uid = int(parts[3])
            need(uid in state.users, "user not found", 404)
            if len(parts) == 4 and method == "DELETE":
                need(uid != 1, "cannot delete the server admin")
                del state.users[uid]
                return 200, {"message": "User deleted"}, "DELETE admin/users/{id}"
            if len(parts) == 5 and parts[4] == "permissions" and method == "PUT":
                need(isinstance(body, dict) and isinstance(body.get("isGrafanaAdmin"), bool), "isGrafanaAdmin is required")
                state.users[uid]["isGrafanaAdmin"] = body["isGrafanaAdmin"]
                return 200, {"message": "User permissions updated"}, "PUT admin/users/{id}/permissions"
            if len(parts) == 5 and parts[4] == "password" and method == "PUT":
                need(isinstance(body, dict) and isinstance(body.get("password"), str) and len(body["password"]) >= 4, "password is required")
                state.users[uid]["password"] = body["password"]
                return 200, {"message": "User password updated"}, "PUT admin/users/{id}/password"
    raise Refused(404, "not found")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, without Nagle: otherwise every keep-alive reply waits for a delayed ACK
    # (measured: 44 ms a request instead of under 1 ms).
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, payload):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        if path.startswith("/_fake/"):
            return self.control(path, raw)
        if path == "/api/health" and self.command == "GET":  # Grafana answers it without credentials
            return self.reply(200, {"database": "ok", "version": "fake"})
        with STATE.lock:
            while STATE.hang:
                STATE.lock.wait(1)
                if not STATE.hang:
                    return self.reply(503, {"message": "service unavailable"})
            if STATE.fail:
                return self.reply(STATE.fail, {"message": "injected failure"})
            auth = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(("%s:%s" % (ARGS.user, ARGS.password)).encode()).decode()
            if auth != expected:
                STATE.refused.append({"method": self.command, "path": self.path, "status": 401, "message": "bad credentials"})
                return self.reply(401, {"message": "Unauthorized"})
            body = None
            if raw:
                if "application/json" not in (self.headers.get("Content-Type") or ""):
                    STATE.refused.append({"method": self.command, "path": self.path, "status": 415, "message": "not JSON"})
                    return self.reply(415, {"message": "Content-Type must be application/json"})
                try:
                    body = json.loads(raw)
                except ValueError:
                    STATE.refused.append({"method": self.command, "path": self.path, "status": 400, "message": "bad JSON"})
                    return self.reply(400, {"message": "bad request data"})
            try:
                status, payload, route = handle_api(STATE, self.command, path, query, body, None)
                STATE.calls[route] = STATE.calls.get(route, 0) + 1
                return self.reply(status, payload)
            except Refused as refused:
                entry = {"method": self.command, "path": self.path, "status": refused.status, "message": refused.message, "body": body}
                if refused.message == "not found" and refused.status == 404:
                    STATE.unknown.append(entry)
                elif not (refused.status == 404 and self.command == "DELETE"):
                    STATE.refused.append(entry)
                return self.reply(refused.status, {"message": refused.message})

    def control(self, path, raw):
        with STATE.lock:
            if path == "/_fake/state" and self.command == "GET":
                return self.reply(200, STATE.dump())
            if path == "/_fake/reset" and self.command == "POST":
                STATE.reset()
                STATE.lock.notify_all()
                return self.reply(200, {})
            if path == "/_fake/mode" and self.command == "POST":
                mode = json.loads(raw or b"{}")
                STATE.fail = mode.get("fail")
                STATE.hang = bool(mode.get("hang"))
                STATE.lock.notify_all()
                return self.reply(200, {})
        return self.reply(404, {"message": "unknown control"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def main():
    global ARGS, STATE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="exit when standard input closes (a test process that dies takes its fake with it)")
    ARGS = parser.parse_args()
    # A parent may have blocked these (threaded runtimes do); the fake must die on them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if ARGS.exit_with_stdin:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    STATE = State()
    server = ThreadingHTTPServer((ARGS.bind, ARGS.port), Handler)
    server.daemon_threads = True
    print("listening on %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
