/**
 * Every duration setting reads the same way: a whole number and one unit, `90s`, `15m`, `36h`,
 * `14d`. One unit only (no `1h30m`, no bare numbers): a bare `15` could mean seconds or minutes,
 * and a setting that silently means the other one is how a reconciler ends up polling every 15 s.
 */
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PATTERN = /^(\d{1,6})\s*([smhd])$/;

/**
 * Milliseconds, or undefined when `text` is not `<whole number><s|m|h|d>`. A bare `0` is zero
 * (nothing needs no unit: `REWARD_HOLD=0` pays at once); `0s` is too. Callers that need more say so.
 */
export function parseDuration(text: string | undefined): number | undefined {
  const trimmed = text?.trim().toLowerCase() ?? '';
  if (trimmed === '0') return 0;
  const match = PATTERN.exec(trimmed);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** The shortest exact spelling of `ms` (`900000` → `15m`), for log lines and banners. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm'] as const) if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  return `${Math.round(ms / 1_000)}s`;
}

/** `5/24h`: at most `count` within `windowMs`; undefined when malformed (a zero count or window is). */
export function parseRate(text: string): { count: number; windowMs: number } | undefined {
  const match = /^(\d{1,6})\s*\/\s*(\S+)$/.exec(text.trim());
  if (!match) return undefined;
  const windowMs = parseDuration(match[2]);
  const count = Number(match[1]);
  return windowMs && count > 0 ? { count, windowMs } : undefined;
}
