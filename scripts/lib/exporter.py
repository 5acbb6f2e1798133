"""A tiny Prometheus exporter for the test scripts (scripts/usage-exporter.py, scripts/outages.py): every GET is
answered with the text that `render()` returns at that moment, in the text exposition format."""
import http.server


def serve(port, render):
    """Serves `render()` on 127.0.0.1:`port` until the process is killed."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
