#!/usr/bin/env bash
# The deployment files users copy: the Dockerfile passes hadolint, the Kubernetes manifests validate
# (strict, against the Kubernetes 1.37 schemas) and the ConfigMap's wsgate.yaml passes `wsgate check`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-python.sh
venv=.venv-conformance/bin
wsgate=${WSGATE:-.build/debug/wsgate}

$venv/hadolint Dockerfile
echo "hadolint: Dockerfile OK"
manifests=(examples/kubernetes/{configmap,deployment,service,hpa,pdb}.yaml)
$venv/kubernetes-validate --strict --quiet "${manifests[@]}"
echo "kubernetes-validate: ${#manifests[@]} manifests OK"
# Every manifest is listed in the kustomization, and every file is validated above.
for file in examples/kubernetes/*.yaml; do
  [[ $file == */kustomization.yaml ]] && continue
  grep -q "^  - $(basename "$file")$" examples/kubernetes/kustomization.yaml || { echo "$file is not in kustomization.yaml" >&2; exit 1; }
  [[ " ${manifests[*]} " == *" $file "* ]] || { echo "$file is not validated by $0" >&2; exit 1; }
done
extracted=.build/kubernetes-wsgate.yaml
$venv/python - "$extracted" <<'PY'
import sys, yaml
with open("examples/kubernetes/configmap.yaml") as f:
    config = yaml.safe_load(f)["data"]["wsgate.yaml"]
with open(sys.argv[1], "w") as f:
    f.write(config)
PY
$wsgate check "$extracted"
# The drain fits in the grace period: preStop pause + drain_timeout < terminationGracePeriodSeconds.
$venv/python - <<'PY'
import re, yaml
deployment = yaml.safe_load(open("examples/kubernetes/deployment.yaml"))
pod = deployment["spec"]["template"]["spec"]
grace = pod["terminationGracePeriodSeconds"]
pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
config = yaml.safe_load(yaml.safe_load(open("examples/kubernetes/configmap.yaml"))["data"]["wsgate.yaml"])
drain = int(re.fullmatch(r"(\d+)s", config["server"]["drain_timeout"]).group(1))
assert pause + drain < grace, f"preStop {pause}s + drain_timeout {drain}s must stay under terminationGracePeriodSeconds {grace}s"
print(f"drain fits: preStop {pause}s + drain_timeout {drain}s < grace period {grace}s")
PY
