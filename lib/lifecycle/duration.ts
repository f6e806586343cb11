/**
 * Durations as people write them in settings: `90s`, `15m`, `36h`, `14d` (and `0` for none).
 * A small parser of the lifecycle's own, until the project has one shared duration parser.
 */
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when the text is not `<whole number><s|m|h|d>` or `0`. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const match = /^(\d{1,6})([smhd])$/.exec(trimmed);
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

/** `5/24h`: at most `count` within `windowMs`; undefined when malformed. */
export function parseRate(text: string): { count: number; windowMs: number } | undefined {
  const match = /^(\d{1,6})\s*\/\s*(\S+)$/.exec(text.trim());
  if (!match) return undefined;
  const windowMs = parseDuration(match[2] as string);
  const count = Number(match[1]);
  return windowMs && count > 0 ? { count, windowMs } : undefined;
}

/** The inverse, for messages and status lines: 129600000 → `36h`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    const size = UNIT_MS[unit] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
