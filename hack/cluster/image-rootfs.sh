#!/usr/bin/env bash
# Builds the project's image (hack/image/build.sh: seconds with warm caches) and unpacks it with
# umoci, once per manifest digest, into $HASAN_CACHE/image/rootfs-<digest>/: rootfs/ (the layers)
# and image-config.json (the image's OCI config: Env, Entrypoint, Cmd, WorkingDir, User). The node
# agent runs the project's containers from there (--image-bundle). Prints that directory as its
# last line. Needs dist/ compiled.
set -euo pipefail
cd "$(dirname "$0")/../.."
HASAN_CACHE=${HASAN_CACHE:-$HOME/.cache/hasan}
log() { echo "image-rootfs: $*" >&2; }

archive=$(hack/image/build.sh | tail -n1)
manifest=$(tar -xOf "$archive" index.json | node -e '
  const idx = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const m = idx.manifests.filter((x) => x.mediaType === "application/vnd.oci.image.manifest.v1+json");
  if (m.length !== 1) throw new Error(`expected one image manifest, found ${m.length}`);
  console.log(m[0].digest.replace(/^sha256:/, ""));
')
bundle=$HASAN_CACHE/image/rootfs-${manifest:0:16}
if [[ -d $bundle ]]; then
  log "$bundle (unpacked before)"
  echo "$bundle"
  exit 0
fi

tmp=$(mktemp -d "$HASAN_CACHE/image/unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/layout"
tar -xf "$archive" -C "$tmp/layout"
# umoci names the image by its ref.name, which holds colons; tag the single manifest plainly.
node -e '
  const fs = require("fs"), f = process.argv[1];
  const idx = JSON.parse(fs.readFileSync(f, "utf8"));
  idx.manifests[0].annotations = { "org.opencontainers.image.ref.name": "hasan" };
  fs.writeFileSync(f, JSON.stringify(idx));
' "$tmp/layout/index.json"
umoci unpack --image "$tmp/layout:hasan" "$tmp/bundle" >/dev/null
config=$(node -e '
  const fs = require("fs"), dir = process.argv[1], d = process.argv[2];
  const m = JSON.parse(fs.readFileSync(`${dir}/blobs/sha256/${d}`, "utf8"));
  console.log(m.config.digest.replace(/^sha256:/, ""));
' "$tmp/layout" "$manifest")
cp "$tmp/layout/blobs/sha256/$config" "$tmp/bundle/image-config.json"
chmod 755 "$tmp/bundle"
mv "$tmp/bundle" "$bundle"
# Every build has a new digest (its creation time): keep this one and the one before.
ls -1dt "$HASAN_CACHE"/image/rootfs-* | tail -n +3 | xargs -r rm -rf
log "unpacked $(du -sh "$bundle/rootfs" | cut -f1) into $bundle"
echo "$bundle"
