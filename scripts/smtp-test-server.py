#!/usr/bin/python3
"""A real SMTP server for the tests (aiosmtpd from Debian's python3-aiosmtpd).

Two listeners on 127.0.0.1: one that requires STARTTLS, one with implicit TLS; both require AUTH (PLAIN/LOGIN) with
the given user and password. Every accepted message is parsed and written as JSON to DIR/<recipient>/<n>.json, so a
test reads back exactly what was delivered to the addresses it made.

Recipients steer failures, so the tests exercise real SMTP replies:
  reject-*@...  RCPT is refused with 550 (a bad address);
  hang-*@...    RCPT waits (writing DIR/hanging-<address>, which holds the client's port) until DIR/release-<address>
                exists, so a test can stop or kill the remas process that holds this claimed event.

Usage: smtp-test-server.py DIR STARTTLS_PORT TLS_PORT CERT KEY USER PASSWORD
"""
import asyncio
import json
import os
import ssl
import sys
import threading
import time
import uuid
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

DIR, STARTTLS_PORT, TLS_PORT, CERT, KEY, USER, PASSWORD = sys.argv[1:8]
LOCK = threading.Lock()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject-"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("hang-"):
            # The client's port names the process holding the claim (ss maps it to a pid); written whole, then renamed.
            marker = os.path.join(DIR, "hanging-" + address)
            with open(marker + ".tmp", "w") as f:
                f.write("%d\n" % session.peer[1])
            os.rename(marker + ".tmp", marker)
            deadline = time.time() + 120
            while time.time() < deadline and not os.path.exists(os.path.join(DIR, "release-" + address)):
                await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "date": str(message["Date"]),
            "message_id": str(message["Message-ID"]),
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "transfer_encoding": str(message["Content-Transfer-Encoding"]),
            "header_count": len(message.keys()),
            "header_names": list(message.keys()),
            "body": message.get_content(),
            # STARTTLS sets session.ssl; on the implicit-TLS listener the transport itself is TLS.
            "tls": session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
            "authenticated": bool(session.authenticated),
            # The client's port tells connections apart: a test checks that sends reuse their connection.
            "peer_port": session.peer[1] if session.peer else None,
        }
        for rcpt in envelope.rcpt_tos:
            folder = os.path.join(DIR, rcpt)
            with LOCK:
                os.makedirs(folder, exist_ok=True)
            name = "%d-%s.json" % (time.time_ns(), uuid.uuid4().hex)
            tmp = os.path.join(folder, "." + name)
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(folder, name))
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD:
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


def main():
    os.makedirs(DIR, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    starttls = Controller(
        Handler(), hostname="127.0.0.1", port=int(STARTTLS_PORT), server_hostname="localhost", tls_context=context,
        require_starttls=True, authenticator=authenticator, auth_required=True, auth_require_tls=True)
    implicit = Controller(
        Handler(), hostname="127.0.0.1", port=int(TLS_PORT), server_hostname="localhost", ssl_context=context,
        authenticator=authenticator, auth_required=True, auth_require_tls=False)
    starttls.start()
    implicit.start()
    open(os.path.join(DIR, "ready"), "w").close()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        starttls.stop()
        implicit.stop()


if __name__ == "__main__":
    main()
