#!/usr/bin/python3
"""Reads remas's iCalendar feeds with real calendar software, for CalendarFeedTests (Debian's python3-icalendar and
khal; run with /usr/bin/python3, where Debian's modules are).

  parse FILE                       the feed's raw form (CRLF, lines of at most 75 octets) and its events as
                                   python-icalendar reads them, as JSON
  khal DIR FILE ZONE DAY DAYS      imports FILE into a khal calendar in DIR (created on first use) whose time zone is
                                   ZONE, and prints the events khal lists from DAY for DAYS days, as JSON
"""
import json
import os
import subprocess
import sys

import icalendar


def parse(path):
    raw = open(path, "rb").read()
    problems = []
    if not raw.endswith(b"\r\n"):
        problems.append("the feed does not end with CRLF")
    for number, line in enumerate(raw.split(b"\r\n")[:-1], 1):
        if b"\n" in line or b"\r" in line:
            problems.append("line %d has a bare CR or LF" % number)
        if len(line) > 75:
            problems.append("line %d is %d octets long" % (number, len(line)))
    calendar = icalendar.Calendar.from_ical(raw)
    events = []
    for event in calendar.walk("VEVENT"):
        modified = event.get("LAST-MODIFIED")
        events.append({
            "uid": str(event["UID"]),
            "summary": str(event["SUMMARY"]),
            "description": str(event.get("DESCRIPTION", "")),
            "start": event.decoded("DTSTART").isoformat(),
            "end": event.decoded("DTEND").isoformat(),
            "tzid": event["DTSTART"].params.get("TZID"),
            "sequence": int(event.get("SEQUENCE", 0)),
            "status": str(event.get("STATUS", "")),
            "last_modified": modified.dt.isoformat() if modified is not None else None,
        })
    zones = [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")]
    print(json.dumps({"problems": problems, "events": events, "timezones": zones,
                      "name": str(calendar.get("X-WR-CALNAME", ""))}))


def khal(directory, path, zone, day, days):
    config = os.path.join(directory, "config")
    if not os.path.exists(config):
        os.makedirs(os.path.join(directory, "calendar"), exist_ok=True)
        with open(config, "w") as f:
            f.write("""[calendars]
[[remas]]
path = %s/calendar/
type = calendar
[locale]
local_timezone = %s
default_timezone = %s
timeformat = %%H:%%M
dateformat = %%Y-%%m-%%d
longdateformat = %%Y-%%m-%%d
datetimeformat = %%Y-%%m-%%d %%H:%%M
longdatetimeformat = %%Y-%%m-%%d %%H:%%M
[sqlite]
path = %s/khal.db
""" % (directory, zone, zone, directory))
    subprocess.run(["khal", "-c", config, "import", "--batch", "-a", "remas", path], check=True, capture_output=True)
    listed = subprocess.run(["khal", "-c", config, "list", "--format", "{uid}|{title}|{start}|{end}", day, days + "d"],
                            check=True, capture_output=True, text=True).stdout
    events = [dict(zip(["uid", "title", "start", "end"], line.split("|"))) for line in listed.splitlines() if line.count("|") == 3]
    print(json.dumps(events))


if __name__ == "__main__":
    if sys.argv[1] == "parse":
        parse(sys.argv[2])
    elif sys.argv[1] == "khal":
        khal(*sys.argv[2:7])
    else:
        sys.exit("unknown command " + sys.argv[1])
