"""Rendered manifests modelled on real charts, for discovery tests (offline and against the test
apiserver). Objects carry no namespace, as most charts render them (Helm applies them to the
release namespace). Each case is named after the acceptance item it covers.
"""

from __future__ import annotations

# (a) ingress-nginx (chart 4.x, metrics enabled): probes GET /healthz on the numeric port 10254,
# which the container declares as `metrics`; Services use named targetPorts.
INGRESS_NGINX = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress-nginx-controller
  labels: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
  template:
    metadata:
      labels: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
    spec:
      containers:
        - name: controller
          image: registry.k8s.io/ingress-nginx/controller:v1.11.2
          ports:
            - {name: http, containerPort: 80, protocol: TCP}
            - {name: https, containerPort: 443, protocol: TCP}
            - {name: metrics, containerPort: 10254, protocol: TCP}
            - {name: webhook, containerPort: 8443, protocol: TCP}
          livenessProbe:
            httpGet: {path: /healthz, port: 10254, scheme: HTTP}
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 1
            successThreshold: 1
            failureThreshold: 5
          readinessProbe:
            httpGet: {path: /healthz, port: 10254, scheme: HTTP}
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 1
            successThreshold: 1
            failureThreshold: 3
---
apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller
spec:
  type: LoadBalancer
  selector: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
  ports:
    - {name: http, port: 80, protocol: TCP, targetPort: http, appProtocol: http}
    - {name: https, port: 443, protocol: TCP, targetPort: https, appProtocol: https}
---
apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller-metrics
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
  ports:
    - {name: metrics, port: 10254, protocol: TCP, targetPort: metrics}
---
apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller-admission
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
  ports:
    - {name: https-webhook, port: 443, targetPort: webhook, appProtocol: https}
"""

# (b) an app behind an oauth2-proxy sidecar: both containers name a port `http`. The Service's
# `targetPort: http` lands on the *first* container with that name (the proxy, 4180), so the
# app's own probe port 8080 is exposed by no Service. The proxy's liveness probe names `metrics`,
# a port only the *other* container declares: the kubelet errors that probe; so do we.
DASHBOARD = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dashboard
spec:
  selector:
    matchLabels: {app: dashboard}
  template:
    metadata:
      labels: {app: dashboard, tier: web}
    spec:
      containers:
        - name: oauth2-proxy
          image: quay.io/oauth2-proxy/oauth2-proxy:v7.6.0
          ports:
            - {name: http, containerPort: 4180}
          readinessProbe:
            httpGet: {path: /ready, port: http}
            periodSeconds: 5
            failureThreshold: 2
          livenessProbe:
            httpGet: {path: /ping, port: metrics}
        - name: dashboard
          image: example/dashboard:2.1
          ports:
            - {name: http, containerPort: 8080}
            - {name: metrics, containerPort: 9090}
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
              httpHeaders:
                - {name: X-Probe, value: kubelet}
---
apiVersion: v1
kind: Service
metadata:
  name: dashboard
spec:
  selector: {app: dashboard}
  ports:
    - {name: http, port: 80, targetPort: http}
"""

# (c) a Redis StatefulSet (bitnami-like): tcpSocket probes on the named port `redis`; the client
# Service leaves targetPort unset (= port 6379); the headless Service is not proxied.
REDIS = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis-master
spec:
  serviceName: redis-headless
  selector:
    matchLabels: {app.kubernetes.io/name: redis, app.kubernetes.io/component: master}
  template:
    metadata:
      labels: {app.kubernetes.io/name: redis, app.kubernetes.io/component: master}
    spec:
      containers:
        - name: redis
          image: bitnami/redis:7.2
          ports:
            - {name: redis, containerPort: 6379}
          livenessProbe:
            tcpSocket: {port: redis}
            periodSeconds: 5
            timeoutSeconds: 5
            failureThreshold: 5
          readinessProbe:
            tcpSocket: {port: redis}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 5
---
apiVersion: v1
kind: Service
metadata:
  name: redis-headless
spec:
  clusterIP: None
  selector: {app.kubernetes.io/name: redis}
  ports:
    - {name: tcp-redis, port: 6379, targetPort: redis}
---
apiVersion: v1
kind: Service
metadata:
  name: redis-master
spec:
  selector: {app.kubernetes.io/name: redis, app.kubernetes.io/component: master}
  ports:
    - {name: tcp-redis, port: 6379}
"""

# (d) a gRPC server with gRPC health probes (the Kubernetes docs' pattern), and (f) a metrics
# port on its Service that no probe covers.
GREETER = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: greeter
spec:
  selector:
    matchLabels: {app: greeter}
  template:
    metadata:
      labels: {app: greeter}
    spec:
      containers:
        - name: greeter
          image: example/greeter:1.0
          ports:
            - {name: grpc, containerPort: 9090}
            - {name: metrics, containerPort: 9102}
          readinessProbe:
            grpc: {port: 9090, service: greeter.v1.Greeter}
            periodSeconds: 5
          livenessProbe:
            grpc: {port: 9090}
            periodSeconds: 20
            failureThreshold: 6
---
apiVersion: v1
kind: Service
metadata:
  name: greeter
spec:
  selector: {app: greeter}
  ports:
    - {name: grpc, port: 9090, targetPort: grpc, appProtocol: kubernetes.io/h2c}
    - {name: metrics, port: 9102, targetPort: metrics}
"""

# (e) podinfo (chart 6.x): exec probes (`podcli check http …`); its Service ports are then
# covered by no probe; (g) its Ingress with TLS.
PODINFO = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: podinfo}
  template:
    metadata:
      labels: {app.kubernetes.io/name: podinfo}
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.6.1
          command: [./podinfo, --port=9898, --port-metrics=9797, --grpc-port=9999]
          ports:
            - {name: http, containerPort: 9898, protocol: TCP}
            - {name: http-metrics, containerPort: 9797, protocol: TCP}
            - {name: grpc, containerPort: 9999, protocol: TCP}
          livenessProbe:
            exec:
              command: [podcli, check, http, localhost:9898/healthz]
            initialDelaySeconds: 1
            timeoutSeconds: 5
          readinessProbe:
            exec:
              command: [podcli, check, http, localhost:9898/readyz]
            initialDelaySeconds: 1
            timeoutSeconds: 5
---
apiVersion: v1
kind: Service
metadata:
  name: podinfo
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: podinfo}
  ports:
    - {name: http, port: 9898, protocol: TCP, targetPort: http}
    - {name: grpc, port: 9999, protocol: TCP, targetPort: grpc}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: podinfo
spec:
  ingressClassName: nginx
  tls:
    - hosts: [podinfo.example.com]
      secretName: podinfo-tls
  rules:
    - host: podinfo.example.com
      http:
        paths:
          - path: /
            pathType: ImplementationSpecific
            backend:
              service: {name: podinfo, port: {number: 9898}}
    - host: podinfo-internal.example.com
      http:
        paths:
          - path: /api
            pathType: Prefix
            backend:
              service: {name: podinfo, port: {name: http}}
"""

ALL = "---".join([INGRESS_NGINX, DASHBOARD, REDIS, GREETER, PODINFO])
# The 1.20 test apiserver predates gRPC probes (1.24+): it drops the field, then rejects a
# probe with no handler. Live-object tests use the charts without GREETER.
ALL_BUT_GRPC = "---".join([INGRESS_NGINX, DASHBOARD, REDIS, PODINFO])


def expected_checks(ns: str, *, grpc: bool = True) -> list[dict]:
    """Every check discovery must derive from ``ALL`` in namespace ``ns``, in order."""
    svc = "svc.cluster.local"
    checks: list[dict] = [
        {
            "name": "ingress-nginx-controller-readiness",
            "tags": ["discovered", "probe"],
            "timeout": "1s",
            "retry": {"attempts": 3, "interval": "10s", "within": "30s"},
            "http": {
                "url": f"http://ingress-nginx-controller-metrics.{ns}.{svc}:10254/healthz",
                "expect": {"status": "200-399"},
            },
        },
        # The same request, but failureThreshold 5: its own check, with its own budget.
        {
            "name": "ingress-nginx-controller-liveness",
            "tags": ["discovered", "probe"],
            "timeout": "1s",
            "retry": {"attempts": 5, "interval": "10s", "within": "50s"},
            "http": {
                "url": f"http://ingress-nginx-controller-metrics.{ns}.{svc}:10254/healthz",
                "expect": {"status": "200-399"},
            },
        },
        {
            "name": "dashboard-oauth2-proxy-readiness",
            "tags": ["discovered", "probe"],
            "timeout": "1s",
            "retry": {"attempts": 2, "interval": "5s", "within": "10s"},
            "http": {
                "url": f"http://dashboard.{ns}.{svc}:80/ready",
                "expect": {"status": "200-399"},
            },
        },
    ]
    # Readiness and liveness differ in timeoutSeconds: two checks. Each goes through both
    # Services exposing port 6379: the proxied one (plain name), then the headless one.
    for probe, timeout in (("readiness", "2s"), ("liveness", "5s")):
        for name, host in (
            (f"redis-master-{probe}", f"redis-master.{ns}.{svc}"),
            (
                f"redis-master-{probe}[service=redis-headless:tcp-redis]",
                f"redis-headless.{ns}.{svc}",
            ),
        ):
            checks.append(
                {
                    "name": name,
                    "tags": ["discovered", "probe"],
                    "timeout": timeout,
                    "retry": {"attempts": 5, "interval": "5s", "within": "25s"},
                    "tcp": {"host": host, "port": 6379},
                }
            )
    if grpc:
        checks += [
            {
                "name": "greeter-readiness",
                "tags": ["discovered", "probe"],
                "timeout": "1s",
                "retry": {"attempts": 3, "interval": "5s", "within": "15s"},
                "grpc": {"target": f"greeter.{ns}.{svc}:9090", "service": "greeter.v1.Greeter"},
            },
            {
                "name": "greeter-liveness",
                "tags": ["discovered", "probe"],
                "timeout": "1s",
                "retry": {"attempts": 6, "interval": "20s", "within": "120s"},
                "grpc": {"target": f"greeter.{ns}.{svc}:9090"},
            },
        ]
    checks += [
        _tcp("ingress-nginx-controller-port-http", f"ingress-nginx-controller.{ns}.{svc}", 80),
        _tcp("ingress-nginx-controller-port-https", f"ingress-nginx-controller.{ns}.{svc}", 443),
        _tcp(
            "ingress-nginx-controller-admission-port-https-webhook",
            f"ingress-nginx-controller-admission.{ns}.{svc}",
            443,
        ),
    ]
    if grpc:
        checks.append(_tcp("greeter-port-metrics", f"greeter.{ns}.{svc}", 9102))
    checks += [
        _tcp("podinfo-port-http", f"podinfo.{ns}.{svc}", 9898),
        _tcp("podinfo-port-grpc", f"podinfo.{ns}.{svc}", 9999),
        {
            "name": "ingress-podinfo-podinfo.example.com",
            "tags": ["discovered", "ingress"],
            "http": {"url": "https://podinfo.example.com/", "expect": {"status": "200-399"}},
        },
        {
            "name": "ingress-podinfo-podinfo-internal.example.com-api",
            "tags": ["discovered", "ingress"],
            "http": {
                "url": "http://podinfo-internal.example.com/api",
                "expect": {"status": "200-399"},
            },
        },
    ]
    return checks


def _tcp(name: str, host: str, port: int) -> dict:
    return {"name": name, "tags": ["discovered", "service"], "tcp": {"host": host, "port": port}}


def expected_not_checked() -> list[tuple[str, str]]:
    """(origin, a fragment of the reason) for everything in ``ALL`` that cannot be checked."""
    return [
        (
            "Deployment/dashboard container oauth2-proxy livenessProbe",
            "livenessProbe port 'metrics' is not a port name of container 'oauth2-proxy'",
        ),
        (
            "Deployment/dashboard container dashboard readinessProbe",
            "no Service selects the pods of Deployment/dashboard and exposes container port 8080",
        ),
        (
            "Deployment/podinfo container podinfo readinessProbe",
            "exec probe (`podcli check http localhost:9898/readyz`) runs inside the container",
        ),
        (
            "Deployment/podinfo container podinfo livenessProbe",
            "exec probe (`podcli check http localhost:9898/healthz`) runs inside the container",
        ),
    ]
