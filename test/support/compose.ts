// Reading docker compose files without a Docker engine, for the packaging tests: YAML through
// python3's yaml (anchors and merge keys resolved), compose's ${VAR} interpolation, the named
// volumes a service mounts, its depends_on, the -A defines of a Kamailio command.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface ComposeService {
  build?: { dockerfile: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: string[] | Record<string, { condition: string }>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  restart?: string;
  ports?: string[];
}
export interface Compose { services: Record<string, ComposeService>; volumes: Record<string, unknown> }

/**
 * Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error};
 * `env` plays the environment (an unset required variable is an error, as compose makes it).
 */
export function interpolate(v: string, env: Readonly<Record<string, string>> = {}): string {
  return v.replace(/\$\{(\w+)(?:(:?)([-?])([^}]*))?\}/g, (_m, name: string, colon: string, op: string | undefined, arg: string) => {
    const set = env[name] !== undefined && (colon !== ':' || env[name] !== '');
    if (set) return env[name]!;
    if (op === '?') throw new Error(`compose: ${name} is required (${arg})`);
    return op === '-' ? arg : '';
  });
}

export function loadCompose(file: string, env: Readonly<Record<string, string>> = {}): Compose {
  const raw = execFileSync('/usr/bin/python3', ['-c', 'import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', file]).toString();
  return JSON.parse(raw, (_k, v: unknown) => (typeof v === 'string' ? interpolate(v, env) : v)) as Compose;
}

/** A service's named-volume mounts: container path → volume name. */
export function namedMounts(s: ComposeService): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of s.volumes ?? []) {
    const [src, dst] = v.split(':');
    if (!src!.startsWith('.') && !src!.startsWith('/')) out.set(path.posix.normalize(dst!), src!);
  }
  return out;
}

/** The named volume a path is on in a service (the deepest mount above it). */
export function volumeOf(s: ComposeService, file: string): string | undefined {
  let best: [string, string] | undefined;
  for (const [dst, vol] of namedMounts(s)) if ((file === dst || file.startsWith(`${dst}/`)) && (!best || dst.length > best[0].length)) best = [dst, vol];
  return best?.[1];
}

export const dependsOn = (s: ComposeService): Record<string, string> =>
  Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, 'service_started'])) : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([k, v]) => [k, v.condition]));

/** Kamailio's defines: a cfg's #!define defaults, then the command's -A NAME=value over them (-A NAME alone: defined, ''). */
export function kamailioDefines(cfg: string, command: readonly string[]): Record<string, string> {
  const defs: Record<string, string> = {};
  for (const [, k, v] of readFileSync(cfg, 'utf8').matchAll(/^#!define\s+(\w+)\s+(.+)$/gm)) defs[k!] = v!.trim().replace(/^"(.*)"$/, '$1');
  command.forEach((a, i) => {
    if (command[i - 1] !== '-A') return;
    const [k, ...rest] = a.split('=');
    defs[k!] = rest.join('=').replace(/^"(.*)"$/, '$1');
  });
  return defs;
}

/** SCA_* settings of a service built from docker/Dockerfile: the image's ENV, then compose's environment over it. */
export function imageEnv(dockerfile: string, s: ComposeService): Record<string, string> {
  const text = readFileSync(dockerfile, 'utf8').replace(/\\\n/g, ' ');
  const env: Record<string, string> = {};
  for (const [, body] of text.matchAll(/^ENV\s+(.+)$/gm)) for (const [, k, v] of body!.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
  return { ...env, ...s.environment };
}
