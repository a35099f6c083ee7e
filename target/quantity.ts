/**
 * Parses a size given as plain bytes or as a Kubernetes quantity ("1Gi", "500M", "1.5Gi").
 * Returns an integer byte count or throws with a message naming the accepted forms.
 */
const binary: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const decimal: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

export function parseQuantity(input: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?\s*$/.exec(input);
  if (!m) {
    throw new Error(
      `invalid size "${input}": use bytes (1073741824) or a Kubernetes quantity (1Gi, 500Mi, 2G)`,
    );
  }
  const unit = m[2] ?? "";
  const factor = binary[unit] ?? decimal[unit] ?? 1;
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes)) {
    throw new Error(`invalid size "${input}": not a whole number of bytes, or too large`);
  }
  return bytes;
}
