// Which images this node can run: the project's own image is this repository's build.

/** Repository part of an image reference, without tag or digest. */
export function imageRepository(image: string): string {
  const noDigest = image.split("@")[0] ?? image;
  const lastSlash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > lastSlash ? noDigest.slice(0, colon) : noDigest;
}

/** The pause image runs as a built-in pause process (sleep), e.g. for placeholder pods. */
export function isPauseImage(image: string): boolean {
  const repo = imageRepository(image);
  return repo === "pause" || repo.endsWith("/pause");
}

export function isProjectImage(image: string): boolean {
  const repo = imageRepository(image);
  return repo === "hasan" || repo.endsWith("/hasan");
}
