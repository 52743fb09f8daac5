"""A stand-in kubelet for tests: serves container logs the way a kubelet does, so that
`GET /api/v1/namespaces/NS/pods/POD/log` through the REAL kube-apiserver works.

How it fits (verified with the apiserver from build-kube-apiserver.sh):
  1. run this server:  python3 scripts/kube/stand-in-kubelet.py --port 10250 --logs-dir DIR
  2. register a Node whose status points at it:
       kubectl apply -f - <<< '{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"}}'
       kubectl patch node node-1 --subresource=status --type=merge -p \
         '{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"}],
                     "daemonEndpoints":{"kubeletEndpoint":{"Port":10250}}}}'
  3. bind a pod to it (what the scheduler does): POST pods/POD/binding with target node-1,
     or create the pod with spec.nodeName: node-1
  4. `kubectl logs POD` -> apiserver -> GET https://127.0.0.1:10250/containerLogs/NS/POD/CONTAINER
The apiserver does not verify the kubelet's certificate unless --kubelet-certificate-authority
is set, so a self-signed certificate is enough. Log text comes from DIR/NS/POD/CONTAINER.log.

`follow=true` (`kubectl logs -f`, the pods/log API's follow) streams the file as it grows, like
the kubelet follows a running container, until DIR/NS/POD/CONTAINER.log.done exists (whoever
plays the container runtime creates it when the container exits) and everything is sent.
"""

import argparse
import http.server
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.parse

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, default=10250)
p.add_argument("--logs-dir", required=True)
a = p.parse_args()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if len(parts) == 4 and parts[0] == "containerLogs":
            path = os.path.join(a.logs_dir, parts[1], parts[2], parts[3] + ".log")
            if os.path.exists(path) and query.get("follow") == ["true"]:
                self.follow(path)
                return
            if os.path.exists(path):
                with open(path, "rb") as f:
                    body = f.read()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_error(404, "no such container log")

    def follow(self, path, limit=900.0):
        # No Content-Length: the body ends when the connection closes (HTTP/1.0), as a stream.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        deadline = time.monotonic() + limit
        with open(path, "rb") as f:
            try:
                while time.monotonic() < deadline:
                    done = os.path.exists(path + ".done")  # before reading: no lost last bytes
                    chunk = f.read()
                    if chunk:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    elif done:
                        return
                    else:
                        time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped following

    def log_message(self, *args):
        pass


# Throwaway self-signed certificate; once loaded, the files are no longer needed, so remove them.
d = tempfile.mkdtemp()
try:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{d}/k.pem",
            "-out",
            f"{d}/c.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{d}/c.pem", f"{d}/k.pem")
finally:
    shutil.rmtree(d, ignore_errors=True)
server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
