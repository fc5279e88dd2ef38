#!/usr/bin/env bash
# Makes the token files for a fleet: one token per node (and one admin token), in the two
# forms the two sides read.
#
# Usage: deploy/k3s/make-secrets.sh [--ca FILE] [--policy-key FILE] DIR NODE...
#   DIR/console-tokens       "NODE TOKEN" per line, plus "admin TOKEN": the console's
#                            --tokens file (Secret edge-console-tokens, key "tokens");
#                            add a third field to a line to bind that node's labels
#                            (docs/protocol.md, "Node labels"); later runs keep it
#   DIR/agent/token.NODE     each node's token alone: keys of the Secret edge-agent, which
#                            every agent pod mounts at /run/secrets/edge-agent and reads
#                            its own key of (EDGE_AGENT_CONSOLE_TOKEN_FILE)
#   DIR/agent/ca.pem         the CA that verifies the console's certificate (--ca FILE;
#                            default: the system's CA bundle, for a publicly signed console)
#   DIR/agent/policy-key.pub the console's policy signing key, with --policy-key FILE
# Run again with more node names to add nodes: existing tokens are kept. NODE is the
# Kubernetes node name. Then create the Secrets with the commands printed at the end.
set -euo pipefail
umask 077

CA=/etc/ssl/certs/ca-certificates.crt
POLICY_KEY=
while [ $# -gt 0 ]; do
  case "$1" in
    --ca) CA=$2; shift 2 ;;
    --policy-key) POLICY_KEY=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--ca FILE] [--policy-key FILE] DIR NODE..." >&2; exit 2; }
DIR=$1
shift
mkdir -p "$DIR/agent"
TOKENS=$DIR/console-tokens
touch "$TOKENS"

new_token() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
has_entry() { awk -v n="$1" '$1 == n { found = 1 } END { exit !found }' "$TOKENS"; }

has_entry admin || echo "admin $(new_token)" >> "$TOKENS"
for node in "$@"; do
  if ! [[ "$node" =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]]; then
    echo "make-secrets: '$node' is not a Kubernetes node name" >&2
    exit 1
  fi
  [ "$node" != admin ] || { echo "make-secrets: 'admin' is reserved" >&2; exit 1; }
  has_entry "$node" || echo "$node $(new_token)" >> "$TOKENS"
done

# One file per node from the tokens file (also the nodes of earlier runs).
rm -f "$DIR"/agent/token.*
awk '!/^[[:space:]]*(#|$)/ && $1 != "admin" { print $1, $2 }' "$TOKENS" |
  while read -r node token; do
    printf '%s\n' "$token" > "$DIR/agent/token.$node"
  done
cp "$CA" "$DIR/agent/ca.pem"
if [ -n "$POLICY_KEY" ]; then cp "$POLICY_KEY" "$DIR/agent/policy-key.pub"; fi

nodes=$(awk '!/^[[:space:]]*(#|$)/ && $1 != "admin"' "$TOKENS" | wc -l)
cat <<MSG
make-secrets: $nodes node token(s) in $TOKENS, agent files in $DIR/agent
Create or update the Secrets (then restart the console to load new tokens):
  kubectl create namespace edge-agent --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n edge-agent create secret generic edge-agent --from-file=$DIR/agent \\
    --dry-run=client -o yaml | kubectl apply -f -
  kubectl create namespace edge-console --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n edge-console create secret generic edge-console-tokens \\
    --from-file=tokens=$TOKENS --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n edge-console rollout restart deployment/edge-console
MSG
