import { z } from "zod";
import { parseQuantity } from "../../target/quantity.js";

/** A byte size: plain bytes or a Kubernetes quantity with a binary or decimal suffix ("10Gi", "500M"). */
export const BYTE_QUANTITY_PATTERN = "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$";

/** Any Kubernetes resource quantity (cpu "250m", memory "64Mi"), as in core/v1 ResourceRequirements. */
export const RESOURCE_QUANTITY_PATTERN =
  "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";

/** Marks a schema node as a Kubernetes int-or-string quantity; the CRD generator rewrites such nodes. */
export const INT_OR_STRING = "x-kubernetes-int-or-string";

function wholeBytes(value: number | string): boolean {
  try {
    parseQuantity(String(value));
    return true;
  } catch {
    return false;
  }
}

export function byteQuantity(description: string) {
  return z
    .union([z.int().nonnegative(), z.string().regex(new RegExp(BYTE_QUANTITY_PATTERN))])
    .refine(wholeBytes, { message: "must be a whole number of bytes (e.g. 1073741824, 10Gi, 500M)" })
    .meta({ [INT_OR_STRING]: true, description });
}

export function resourceQuantity(description: string) {
  return z
    .union([z.int(), z.string().regex(new RegExp(RESOURCE_QUANTITY_PATTERN))])
    .meta({ [INT_OR_STRING]: true, description });
}

/** Bytes of a validated byte quantity. */
export function quantityBytes(value: number | string): number {
  return parseQuantity(String(value));
}

/** Bytes of a quantity, or NaN when it is not a whole number of bytes. */
export function quantityBytesOrNaN(value: number | string): number {
  try {
    return parseQuantity(String(value));
  } catch {
    return Number.NaN;
  }
}
