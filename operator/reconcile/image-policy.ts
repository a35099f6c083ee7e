/**
 * Which images a HASanTarget may run: spec.pod.image is set by whoever may create HASanTargets,
 * and the target pods mount the pair's secrets and data, so the operator's administrator lists the
 * images allowed (allowedTargetImages): exact references, or prefixes ending in `*`.
 */
import type { HASanTarget } from "../api/target.js";

/** A pattern as the configuration accepts it: no whitespace, `*` only at the end. */
export const IMAGE_PATTERN = /^[^\s*]+\*?$/;

export function imageAllowed(image: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith("*") ? image.startsWith(p.slice(0, -1)) : image === p));
}

/**
 * Why the target's image is refused, or undefined. An unset spec.pod.image runs the operator's own
 * target image, which the administrator chose, so only an image the spec names is checked.
 */
export function targetImageProblem(t: HASanTarget, allowed: readonly string[]): string | undefined {
  const image = t.spec.pod?.image;
  if (image === undefined || imageAllowed(image, allowed)) return undefined;
  return (
    `spec.pod.image: ${image} is not allowed by the operator's allowedTargetImages ` +
    `(${allowed.join(", ")}); no pod runs it until the setting allows it or the image changes`
  );
}
