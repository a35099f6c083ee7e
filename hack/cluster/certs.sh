#!/usr/bin/env bash
# Creates the cluster CA, serving and client certificates, kubeconfigs and the service-account
# signing key pair in $HASAN_RUN_DIR/pki (only those missing).
set -euo pipefail
source "$(dirname "$0")/env.sh"
pki=$HASAN_RUN_DIR/pki
mkdir -p "$pki"
cd "$pki"

[[ -f ca.crt ]] || {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=hasan-local-ca" 2>/dev/null
}

# client_cert NAME CN ORG
client_cert() {
  local name=$1 cn=$2 org=$3
  [[ -f $name.crt ]] && return
  local subj="/CN=$cn"; [[ -n $org ]] && subj="/O=$org/CN=$cn"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
    -days 3650 -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

[[ -f apiserver.crt ]] || {
  svc_ip=$(node -e 'const [a,m]=process.argv[1].split("/");const n=a.split(".").reduce((x,o)=>x*256+ +o,0)+1;console.log([24,16,8,0].map(s=>(n>>>s)&255).join("."))' "$SERVICE_CIDR")
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
  {
    echo "extendedKeyUsage=serverAuth"
    echo "keyUsage=digitalSignature,keyEncipherment"
    echo "subjectAltName=IP:127.0.0.1,IP:$svc_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  } >apiserver.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt \
    -days 3650 -extfile apiserver.ext 2>/dev/null
  rm -f apiserver.csr apiserver.ext
}
# The node agent's kubelet API (container logs) on each node's InternalIP 127.0.10.N.
[[ -f kubelet.crt ]] || {
  openssl req -newkey rsa:2048 -nodes -keyout kubelet.key -out kubelet.csr -subj "/CN=hasan-nodes" 2>/dev/null
  sans=$(for i in $(seq 1 50); do printf 'IP:127.0.10.%s,DNS:hasan-node-%s,' "$i" "$i"; done)
  {
    echo "extendedKeyUsage=serverAuth"
    echo "keyUsage=digitalSignature,keyEncipherment"
    echo "subjectAltName=${sans%,}"
  } >kubelet.ext
  openssl x509 -req -in kubelet.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet.crt \
    -days 3650 -extfile kubelet.ext 2>/dev/null
  rm -f kubelet.csr kubelet.ext
}
[[ -f sa.key ]] || {
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
}
client_cert admin admin system:masters
client_cert controller-manager system:kube-controller-manager ""
client_cert scheduler system:kube-scheduler ""
client_cert node-agent hasan-node-agent system:masters

# kubeconfig FILE CERTNAME
kubeconfig() {
  local file=$1 name=$2
  [[ -f $file ]] && return
  cat >"$file.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: hasan
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $name
  user:
    client-certificate: $pki/$name.crt
    client-key: $pki/$name.key
contexts:
- name: hasan
  context: {cluster: hasan, user: $name, namespace: default}
current-context: hasan
KC
  mv "$file.tmp" "$file"
}
kubeconfig "$HASAN_RUN_DIR/kubeconfig" admin
kubeconfig "$pki/controller-manager.kubeconfig" controller-manager
kubeconfig "$pki/scheduler.kubeconfig" scheduler
kubeconfig "$pki/node-agent.kubeconfig" node-agent
