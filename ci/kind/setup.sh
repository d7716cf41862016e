#!/usr/bin/env bash
# Two kind clusters joined by Istio (multi-primary, multi-network, shared root
# CA), Bookinfo in both, and a health-checking entry point in front of the two
# ingress gateways: a small copy of the users' two-region deployment
# (docs/reference-system.md) for running drills in CI.
#
# Needs docker, kind, kubectl and curl on PATH. Pinned versions below; change
# them together. Run from the repository root: bash ci/kind/setup.sh
set -euo pipefail

ISTIO_VERSION="${ISTIO_VERSION:-1.28.0}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.34.0}"
METALLB_VERSION="${METALLB_VERSION:-v0.14.9}"
WORK="${WORK:-$PWD/.kind}"
mkdir -p "$WORK"

log() { printf '\n== %s\n' "$*" >&2; }

log "istio $ISTIO_VERSION"
if [ ! -x "$WORK/istio-$ISTIO_VERSION/bin/istioctl" ]; then
  (cd "$WORK" && curl -sSL https://istio.io/downloadIstio | ISTIO_VERSION="$ISTIO_VERSION" sh -)
fi
ISTIO="$WORK/istio-$ISTIO_VERSION"
ISTIOCTL="$ISTIO/bin/istioctl"

# One shared root CA, one intermediate per cluster (Istio's plug-in CA).
log "certificates"
mkdir -p "$WORK/certs"
(
  cd "$WORK/certs"
  [ -f root-cert.pem ] || make -f "$ISTIO/tools/certs/Makefile.selfsigned.mk" root-ca
  for c in primary secondary; do
    [ -d "$c" ] || make -f "$ISTIO/tools/certs/Makefile.selfsigned.mk" "$c-cacerts"
  done
)

# Region → (network, host port of the ingress gateway's NodePort).
declare -A NETWORK=([primary]=network1 [secondary]=network2)
declare -A HOSTPORT=([primary]=8081 [secondary]=8082)
declare -A LB_RANGE=([primary]=200-219 [secondary]=220-239)

for c in primary secondary; do
  log "kind cluster $c"
  if ! kind get clusters | grep -qx "$c"; then
    cat >"$WORK/kind-$c.yaml" <<KIND
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 30080
        hostPort: ${HOSTPORT[$c]}
        protocol: TCP
  - role: worker
  - role: worker
KIND
    kind create cluster --name "$c" --image "$KIND_NODE_IMAGE" --config "$WORK/kind-$c.yaml" --wait 120s
  fi
done

# LoadBalancer addresses for the east-west gateways, from kind's docker network.
SUBNET=$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' | tr ' ' '\n' | grep -v ':' | head -1)
PREFIX=$(echo "$SUBNET" | cut -d. -f1-2)
for c in primary secondary; do
  ctx="kind-$c"
  log "metallb in $c"
  kubectl --context "$ctx" apply -f "https://raw.githubusercontent.com/metallb/metallb/$METALLB_VERSION/config/manifests/metallb-native.yaml"
  kubectl --context "$ctx" -n metallb-system wait --for=condition=Available deployment --all --timeout=180s
  kubectl --context "$ctx" -n metallb-system rollout status daemonset/speaker --timeout=180s
  from=${LB_RANGE[$c]%-*}; to=${LB_RANGE[$c]#*-}
  kubectl --context "$ctx" apply -f - <<LB
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: { name: kind, namespace: metallb-system }
spec: { addresses: ["$PREFIX.255.$from-$PREFIX.255.$to"] }
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: { name: kind, namespace: metallb-system }
LB
done

for c in primary secondary; do
  ctx="kind-$c"
  log "istio in $c (${NETWORK[$c]})"
  kubectl --context "$ctx" create namespace istio-system --dry-run=client -o yaml | kubectl --context "$ctx" apply -f -
  kubectl --context "$ctx" label namespace istio-system "topology.istio.io/network=${NETWORK[$c]}" --overwrite
  kubectl --context "$ctx" -n istio-system create secret generic cacerts \
    --from-file="$WORK/certs/$c/ca-cert.pem" --from-file="$WORK/certs/$c/ca-key.pem" \
    --from-file="$WORK/certs/$c/root-cert.pem" --from-file="$WORK/certs/$c/cert-chain.pem" \
    --dry-run=client -o yaml | kubectl --context "$ctx" apply -f -
  cat >"$WORK/istio-$c.yaml" <<IOP
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  values:
    global:
      meshID: mesh1
      multiCluster: { clusterName: $c }
      network: ${NETWORK[$c]}
  components:
    ingressGateways:
      - name: istio-ingressgateway
        enabled: true
        k8s:
          service:
            type: NodePort
            ports:
              - { name: status-port, port: 15021, targetPort: 15021 }
              - { name: http2, port: 80, targetPort: 8080, nodePort: 30080 }
          # kind maps the NodePort on the control-plane node only.
          nodeSelector: { ingress-ready: "true" }
          tolerations:
            - { key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule }
IOP
  kubectl --context "$ctx" label node "$c-control-plane" ingress-ready=true --overwrite
  "$ISTIOCTL" install -y --context "$ctx" -f "$WORK/istio-$c.yaml"
  "$ISTIO/samples/multicluster/gen-eastwest-gateway.sh" --network "${NETWORK[$c]}" \
    | "$ISTIOCTL" install -y --context "$ctx" -f -
  kubectl --context "$ctx" apply -n istio-system -f "$ISTIO/samples/multicluster/expose-services.yaml"
done

log "remote secrets (endpoint discovery across clusters)"
for c in primary secondary; do
  other=primary; [ "$c" = primary ] && other=secondary
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c-control-plane")
  "$ISTIOCTL" create-remote-secret --context "kind-$c" --name "$c" --server "https://$ip:6443" \
    | kubectl --context "kind-$other" apply -f -
done

for c in primary secondary; do
  ctx="kind-$c"
  log "bookinfo in $c"
  kubectl --context "$ctx" create namespace bookinfo --dry-run=client -o yaml | kubectl --context "$ctx" apply -f -
  kubectl --context "$ctx" label namespace bookinfo istio-injection=enabled --overwrite
  kubectl --context "$ctx" -n bookinfo apply -f "$ISTIO/samples/bookinfo/platform/kube/bookinfo.yaml"
  kubectl --context "$ctx" -n bookinfo apply -f "$ISTIO/samples/bookinfo/networking/bookinfo-gateway.yaml"
  kubectl --context "$ctx" -n bookinfo apply -f "$ISTIO/samples/bookinfo/networking/destination-rule-all.yaml"
  kubectl --context "$ctx" -n bookinfo apply -f "$ISTIO/samples/bookinfo/networking/virtual-service-all-v1.yaml"
  kubectl --context "$ctx" -n bookinfo wait --for=condition=Available deployment --all --timeout=300s
  kubectl --context "$ctx" -n istio-system wait --for=condition=Available deployment --all --timeout=300s
done

log "global entry (health-checked failover, primary preferred)"
cat >"$WORK/haproxy.cfg" <<HA
global
  log stdout format raw local0
defaults
  mode http
  timeout connect 3s
  timeout client 30s
  timeout server 30s
frontend entry
  bind :8080
  default_backend regions
backend regions
  option httpchk GET /productpage
  http-check expect status 200
  default-server inter 2s fall 3 rise 2
  server primary primary-control-plane:30080 check
  server secondary secondary-control-plane:30080 check backup
HA
docker rm -f drill-entry >/dev/null 2>&1 || true
docker run -d --name drill-entry --network kind -p 8080:8080 \
  -v "$WORK/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" haproxy:3.0-alpine

for url in http://127.0.0.1:8081/productpage http://127.0.0.1:8082/productpage http://127.0.0.1:8080/productpage; do
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "$url" && break
    sleep 2
  done
  curl -fsS -o /dev/null "$url" || { echo "not serving: $url" >&2; exit 1; }
done
log "ready: entry http://127.0.0.1:8080, contexts kind-primary and kind-secondary"
