"""mitmproxy addon for bench/gateway.sh: the equivalent of clawpatrol's --connect-to.

$BENCH_CONNECT_TO is "HOST:PORT:ADDR:PORT", as the gateway's flag. A CONNECT to HOST:PORT
has its target replaced by ADDR:PORT before mitmproxy uses it, so the upstream connection
dials ADDR:PORT while SNI (the client's), the Host header and certificate verification
stay those of HOST. The hook runs once per CONNECT (per client connection), not per
request; every request on the tunnel reuses the same upstream connection.
"""

import os

_host, _port, _addr, _addr_port = os.environ["BENCH_CONNECT_TO"].rsplit(":", 3)


class ConnectTo:
    def http_connect(self, flow):
        req = flow.request
        if req.host == _host and req.port == int(_port):
            req.host = _addr
            req.port = int(_addr_port)


addons = [ConnectTo()]
