#!/usr/bin/env python3
"""A small renderer for the part of kustomize that deploy/k3s uses.

The manifest tests render every overlay with `kubectl kustomize` when a kubectl with
kustomize v4 or newer is installed, and always with this module; when both ran they must
agree object for object. On a machine without kubectl this module alone renders, so the
schema and consistency checks still run. It is not a general kustomize: anything outside
the subset below is an error, not silently ignored.

Supported (kustomize v5 semantics):
  kinds:       Kustomization (kustomize.config.k8s.io/v1beta1), Component (v1alpha1)
  fields:      resources (files and directories), components, namespace,
               labels (pairs, includeSelectors: false), configMapGenerator (files, literals,
               behavior create/replace/merge), patches (path to a strategic merge patch),
               images (name, newName, newTag, digest)
  order:       resources, components, generators, patches, namespace, labels, images;
               content-hash name suffixes on generated ConfigMaps at the end, with the
               references to them (volumes, configMapKeyRef, envFrom, projected) renamed
  strategic merge: maps merge, null deletes a key, lists of containers/initContainers/
               env/volumes/ports/imagePullSecrets merge by key with the patch's items
               first (as kustomize orders them), volumeMounts by mountPath, other lists
               are replaced

Usage: kustomize_lite.py DIR   (prints the objects as a YAML stream)
"""

import copy
import hashlib
import json
import os
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("kustomize_lite.py needs PyYAML (Debian: apt-get install python3-yaml)")

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "components", "namespace", "labels",
                "configMapGenerator", "patches", "images"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass",
                  "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
# Lists merged by key in a strategic merge patch (from the Kubernetes API's
# patchMergeKey tags); every other list is replaced.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
              "env": "name", "volumes": "name", "imagePullSecrets": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
_GENERATED = "__kustomize_lite_generated__"


class KustomizeError(Exception):
    pass


def _load_yaml_stream(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def _kustomization(directory):
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            docs = _load_yaml_stream(path)
            if len(docs) != 1 or not isinstance(docs[0], dict):
                raise KustomizeError("%s: expected one mapping" % path)
            k = docs[0]
            unknown = set(k) - KNOWN_FIELDS
            if unknown:
                raise KustomizeError("%s: fields not supported here: %s"
                                     % (path, ", ".join(sorted(unknown))))
            return path, k
    raise KustomizeError("no kustomization in %s" % directory)


def _key(obj):
    md = obj.get("metadata", {})
    return (obj.get("apiVersion"), obj.get("kind"), md.get("namespace"), md.get("name"))


# ------------------------------------------------------------------ strategic merge


def _merge_list(dest, patch, key):
    by_key = {item.get(key): item for item in dest if isinstance(item, dict)}
    out, used = [], set()
    for item in patch:
        k = item.get(key)
        if k in by_key:
            out.append(strategic_merge(by_key[k], item))
            used.add(k)
        else:
            out.append(_drop_nulls(copy.deepcopy(item)))
    out.extend(copy.deepcopy(item) for item in dest if item.get(key) not in used)
    return out


def _drop_nulls(value):
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def strategic_merge(dest, patch):
    """dest updated by a strategic merge patch (a new object; neither input changes)."""
    out = copy.deepcopy(dest)
    for k, v in patch.items():
        if isinstance(v, str) and k.startswith("$"):
            raise KustomizeError("patch directive %s not supported" % k)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = strategic_merge(out[k], v)
        elif isinstance(v, list) and isinstance(out.get(k), list) and k in MERGE_KEYS:
            out[k] = _merge_list(out[k], v, MERGE_KEYS[k])
        else:
            out[k] = _drop_nulls(copy.deepcopy(v))
    return out


# -------------------------------------------------------------------- transformers


def _pod_specs(obj):
    spec = obj.get("spec", {})
    if obj.get("kind") == "Pod":
        yield spec
    tmpl = spec.get("template", {}).get("spec")
    if tmpl is not None:
        yield tmpl
    job = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if job is not None:
        yield job


def _split_image(image):
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def _apply_images(objs, images):
    for entry in images:
        unknown = set(entry) - {"name", "newName", "newTag", "digest"}
        if unknown:
            raise KustomizeError("images: unsupported fields %s" % sorted(unknown))
    for obj in objs:
        for pod in _pod_specs(obj):
            for field in ("initContainers", "containers"):
                for c in pod.get(field, []):
                    name, tag, digest = _split_image(c["image"])
                    for entry in images:
                        if entry["name"] != name:
                            continue
                        name = entry.get("newName", name)
                        if "newTag" in entry:
                            tag, digest = str(entry["newTag"]), None
                        if "digest" in entry:
                            tag, digest = None, entry["digest"]
                        c["image"] = name + (":" + tag if tag else "") + \
                            ("@" + digest if digest else "")
                        break


def _apply_namespace(objs, namespace):
    for obj in objs:
        if obj.get("kind") not in CLUSTER_SCOPED:
            obj.setdefault("metadata", {})["namespace"] = namespace


def _apply_labels(objs, labels):
    for entry in labels:
        unknown = set(entry) - {"pairs", "includeSelectors"}
        if unknown or entry.get("includeSelectors"):
            raise KustomizeError("labels: only pairs with includeSelectors: false")
        for obj in objs:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(
                {k: str(v) for k, v in entry["pairs"].items()})


def _apply_patches(objs, patches, directory):
    for p in patches:
        if set(p) != {"path"}:
            raise KustomizeError("patches: only 'path' entries are supported")
        docs = _load_yaml_stream(os.path.join(directory, p["path"]))
        for patch in docs:
            kind, name = patch.get("kind"), patch.get("metadata", {}).get("name")
            hits = [i for i, o in enumerate(objs)
                    if o.get("kind") == kind and o.get("metadata", {}).get("name") == name]
            if len(hits) != 1:
                raise KustomizeError("patch %s: %d objects match %s/%s"
                                     % (p["path"], len(hits), kind, name))
            objs[hits[0]] = strategic_merge(objs[hits[0]], patch)


# ---------------------------------------------------------------------- generators


def _config_map(gen, directory):
    unknown = set(gen) - {"name", "files", "literals", "behavior"}
    if unknown:
        raise KustomizeError("configMapGenerator: unsupported fields %s" % sorted(unknown))
    data = {}
    for f in gen.get("files", []):
        key, _, path = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
        with open(os.path.join(directory, path)) as fh:
            data[key] = fh.read()
    for lit in gen.get("literals", []):
        key, sep, value = lit.partition("=")
        if not sep:
            raise KustomizeError("literal %r has no '='" % lit)
        data[key] = value
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": gen["name"], "annotations": {_GENERATED: "true"}},
            "data": data}


def _run_generators(objs, generators, directory):
    for gen in generators:
        cm = _config_map(gen, directory)
        behavior = gen.get("behavior", "create")
        hits = [i for i, o in enumerate(objs)
                if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == gen["name"]]
        if behavior == "create":
            if hits:
                raise KustomizeError("ConfigMap %s generated twice" % gen["name"])
            objs.append(cm)
        elif behavior in ("replace", "merge"):
            if len(hits) != 1:
                raise KustomizeError("ConfigMap %s: nothing to %s" % (gen["name"], behavior))
            old = objs[hits[0]]
            if behavior == "merge":
                old["data"].update(cm["data"])
            else:
                old["data"] = cm["data"]
        else:
            raise KustomizeError("behavior %r" % behavior)


def _go_json(value):
    """json.Marshal of Go: sorted keys, no spaces, <>& and U+2028/9 escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def config_map_hash(cm):
    """kustomize's name suffix of a generated ConfigMap.

    As kustomize v5 computes it: sha256 of the JSON of kind, name and data, the first ten
    hex digits with 0, 1, 3, a, e replaced. kustomize v5 looks the name up with a path
    that matches nothing, so the name enters the hash as "" (kept here, to agree).
    """
    encoded = _go_json({"kind": "ConfigMap", "name": "", "data": cm.get("data", {})})
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def _config_map_refs(obj):
    """Yields (dict, key) for every place a pod spec names a ConfigMap."""
    for pod in _pod_specs(obj):
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                yield vol["configMap"], "name"
            for src in vol.get("projected", {}).get("sources", []):
                if "configMap" in src:
                    yield src["configMap"], "name"
        for field in ("initContainers", "containers"):
            for c in pod.get(field, []):
                for env in c.get("env", []):
                    ref = env.get("valueFrom", {}).get("configMapKeyRef")
                    if ref is not None:
                        yield ref, "name"
                for env_from in c.get("envFrom", []):
                    if "configMapRef" in env_from:
                        yield env_from["configMapRef"], "name"


def _finish(objs):
    renames = {}
    for obj in objs:
        annotations = obj.get("metadata", {}).get("annotations", {})
        if annotations.pop(_GENERATED, None):
            if not annotations:
                del obj["metadata"]["annotations"]
            md = obj["metadata"]
            new = "%s-%s" % (md["name"], config_map_hash(obj))
            renames[(md.get("namespace"), md["name"])] = new
            md["name"] = new
    for obj in objs:
        ns = obj.get("metadata", {}).get("namespace")
        for holder, key in _config_map_refs(obj):
            holder[key] = renames.get((ns, holder[key]), holder[key])
    return objs


# --------------------------------------------------------------------------- build


def _accumulate(directory, objs, expect_kind):
    path, k = _kustomization(directory)
    kind = k.get("kind", "Kustomization")
    if kind != expect_kind:
        raise KustomizeError("%s: expected kind %s, got %s" % (path, expect_kind, kind))
    for res in k.get("resources", []):
        full = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(full):
            objs.extend(_accumulate(full, [], "Kustomization"))
        else:
            objs.extend(_load_yaml_stream(full))
    for comp in k.get("components", []):
        objs = _accumulate(os.path.normpath(os.path.join(directory, comp)), objs, "Component")
    _run_generators(objs, k.get("configMapGenerator", []), directory)
    _apply_patches(objs, k.get("patches", []), directory)
    if "namespace" in k:
        _apply_namespace(objs, k["namespace"])
    _apply_labels(objs, k.get("labels", []))
    _apply_images(objs, k.get("images", []))
    seen = set()
    for obj in objs:
        if _key(obj) in seen:
            raise KustomizeError("%s: duplicate object %s" % (path, _key(obj)))
        seen.add(_key(obj))
    return objs


def build(directory):
    """The objects `kustomize build DIRECTORY` would print (in no particular order)."""
    return _finish(_accumulate(os.path.abspath(directory), [], "Kustomization"))


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: kustomize_lite.py DIR\n")
        return 2
    yaml.safe_dump_all(build(argv[1]), sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
