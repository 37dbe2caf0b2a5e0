/**
 * Docker image references: parsing, normalisation and formatting.
 *
 * Follows the grammar and normalisation rules of github.com/distribution/reference
 * (the package `docker` itself uses), i.e. `ParseNormalizedNamed` + `TagNameOnly`:
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [domain "/"] path
 *   domain           := host [":" port]
 *   host             := domain-name | IPv4address | "[" IPv6address "]"
 *   domain-name      := domain-component ["." domain-component]*
 *   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
 *   path             := path-component ["/" path-component]*
 *   path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*
 *   separator        := /[_.]|__|[-]+/
 *   tag              := /[\w][\w.-]{0,127}/
 *   digest           := algorithm ":" hex   (sha256/sha384/sha512, lowercase hex of exact length)
 *
 * Normalisation: the first "/"-separated component is the registry domain only if it
 * is "localhost", contains "." or ":", or contains an uppercase letter; otherwise the
 * image lives on Docker Hub ("docker.io"). "index.docker.io" is an alias of docker.io,
 * and single-component Docker Hub names get the "library/" namespace.
 */
import { MiniboxError } from "../errors.js";

export interface ImageReference {
  /** Registry: "docker.io", "localhost:5000", "127.0.0.1:5000", "[::1]:5000", "ghcr.io". */
  domain: string;
  /** Repository path inside the registry: "library/alpine", "x", "user/app". */
  path: string;
  /** "3.8"; parseReference sets "latest" when neither a tag nor a digest was given. */
  tag?: string;
  /** "sha256:<64 hex>". */
  digest?: string;
}

const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
const DEFAULT_TAG = "latest";
const LOCALHOST = "localhost";
const REPOSITORY_NAME_MAX_LENGTH = 255;
const TAG_MAX_LENGTH = 128;

/** Hex length of each supported digest algorithm (what go-digest registers for docker). */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = {
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

// --- grammar, built from the same productions as distribution/reference regexp.go ---

const alphanumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const optionalPort = "(?::[0-9]+)?";
const tagPattern = "[\\w][\\w.-]{0,127}";
const digestPattern = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}";
const ipv6Address = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6Address})`;
const domainAndPort = `${host}${optionalPort}`;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;

const anchoredDomainRe = new RegExp(`^${domainAndPort}$`);
const anchoredPathComponentRe = new RegExp(`^${pathComponent}$`);
const anchoredTagRe = new RegExp(`^${tagPattern}$`);
const anchoredDigestRe = new RegExp(`^${digestPattern}$`);
/** Everything after "<domain>/": path, optional tag, optional digest. */
const remainderRe = new RegExp(`^(${remoteName})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
/** A full image ID: 64 lowercase hex characters (never accepted as a repository name). */
const anchoredIdentifierRe = /^[a-f0-9]{64}$/;
/** An IPv6 registry address (with optional port) typed without any repository after it. */
const bareIpv6HostRe = new RegExp(`^${ipv6Address}${optionalPort}$`);
const urlSchemeRe = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;
const imageIdRe = /^(?:sha256:[a-f0-9]{1,64}|[a-f0-9]{12,64})$/;

function invalid(what: string): MiniboxError {
  return new MiniboxError(`invalid reference format: ${what}`);
}

/** Quote a user-supplied fragment for an error message, keeping the message one short line. */
function q(s: string): string {
  const shown = s.length > 80 ? `${s.slice(0, 77)}...` : s;
  return JSON.stringify(shown);
}

/**
 * Split a (familiar) reference into registry domain and the rest (path[:tag][@digest]),
 * applying Docker Hub normalisation. Mirrors splitDockerDomain in normalize.go.
 */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf("/");
  if (slash < 0) {
    // Single component ("alpine", "alpine:3.8", even "localhost:5000"): always a Docker
    // Hub official image, never a bare registry host.
    return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPO_PREFIX + name };
  }
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (first === LOCALHOST) {
    domain = first;
    remainder = rest;
  } else if (first === LEGACY_DEFAULT_DOMAIN) {
    domain = DEFAULT_DOMAIN;
    remainder = rest;
  } else if (first.includes(".") || first.includes(":")) {
    domain = first;
    remainder = rest;
  } else if (first.toLowerCase() !== first) {
    // Uppercase is never valid in a path, so an uppercase first component is a host.
    domain = first;
    remainder = rest;
  } else {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes("/")) {
    remainder = OFFICIAL_REPO_PREFIX + remainder;
  }
  return { domain, remainder };
}

function checkDigest(digest: string): void {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const expected = DIGEST_HEX_LENGTH[algorithm];
  if (expected === undefined) {
    throw invalid(
      `digest algorithm ${q(algorithm)} is not supported (use sha256, sha384 or sha512)`,
    );
  }
  if (hex.length !== expected) {
    throw invalid(
      `digest ${q(digest)} has the wrong length: ${algorithm} needs ${expected} hex characters, got ${hex.length}`,
    );
  }
  if (!/^[a-f0-9]+$/.test(hex)) {
    throw invalid(`digest ${q(digest)} must be written in lowercase hex`);
  }
}

/**
 * Work out which part of a rejected reference is wrong, so the message tells the user
 * what to fix. Only called once the grammar has already rejected the input.
 */
function diagnose(input: string, domain: string, remainder: string): string {
  const scheme = urlSchemeRe.exec(input);
  if (scheme) {
    return `remove the "${scheme[1]}://" prefix; image references have no URL scheme (e.g. "ghcr.io/user/app:tag")`;
  }
  if (!input.includes("/") && input.includes("[")) {
    const example = bareIpv6HostRe.test(input) ? `${input}/name` : "[::1]:5000/name";
    return `${q(input)} has an IPv6 registry address but no repository; write it as "${example}"`;
  }
  if (!anchoredDomainRe.test(domain)) {
    return `registry host ${q(domain)} is invalid (expected a hostname or IP address with an optional numeric port, e.g. "registry.example.com:5000" or "[::1]:5000")`;
  }

  const at = remainder.indexOf("@");
  const namePart = at < 0 ? remainder : remainder.slice(0, at);
  const digest = at < 0 ? undefined : remainder.slice(at + 1);
  const tagColon = namePart.indexOf(":", namePart.lastIndexOf("/") + 1);
  const path = tagColon < 0 ? namePart : namePart.slice(0, tagColon);
  const tag = tagColon < 0 ? undefined : namePart.slice(tagColon + 1);

  if (path === "") return `repository name is missing after registry host ${q(domain)}`;
  for (const component of path.split("/")) {
    if (component === "") {
      return `repository name ${q(path)} has an empty path component (look for a doubled, leading or trailing "/")`;
    }
    if (!anchoredPathComponentRe.test(component)) {
      return `repository name component ${q(component)} is invalid (use lowercase letters and digits, joined by ".", "_", "__" or "-", starting and ending with a letter or digit)`;
    }
  }
  if (tag !== undefined && !anchoredTagRe.test(tag)) {
    if (tag === "") return `tag is empty (remove the trailing ":" or put a tag after it)`;
    if (tag.length > TAG_MAX_LENGTH) {
      return `tag is ${tag.length} characters long; tags may be at most ${TAG_MAX_LENGTH}`;
    }
    return `tag ${q(tag)} is invalid (use letters, digits, "_", "." and "-", not starting with "." or "-")`;
  }
  if (digest !== undefined && !anchoredDigestRe.test(digest)) {
    if (digest === "") return `digest is empty (remove the trailing "@" or put a digest after it)`;
    return `digest ${q(digest)} is invalid (expected "<algorithm>:<hex>", e.g. "sha256:" followed by 64 hex characters)`;
  }
  return `${q(input)} is not a valid image reference`;
}

/**
 * Parse and normalise an image reference the way `docker pull` does
 * (ParseNormalizedNamed + TagNameOnly): "alpine" → docker.io/library/alpine:latest.
 * A reference with both a tag and a digest keeps both.
 *
 * Note: like docker, this parses "sha256:<hex>" as repository "sha256" with a tag;
 * check {@link looksLikeImageId} first where image IDs are acceptable.
 *
 * @throws MiniboxError ("invalid reference format: …") on invalid input.
 */
export function parseReference(input: string): ImageReference {
  if (input === "") throw invalid("image name is empty");
  if (input.startsWith(":") || input.startsWith("@")) {
    throw invalid(`repository name is missing before "${input[0]}" in ${q(input)}`);
  }
  if (anchoredIdentifierRe.test(input)) {
    throw invalid(
      `repository name ${q(input)} cannot be a 64-character hexadecimal string (that is the form of an image ID)`,
    );
  }

  const { domain, remainder } = splitDockerDomain(input);
  // Same wording as docker: "repository name (library/Alpine) must be lowercase".
  const [remote = ""] = remainder.split(/[:@]/, 1);
  if (remote.toLowerCase() !== remote) {
    throw invalid(`repository name (${remote}) must be lowercase`);
  }

  const match = anchoredDomainRe.test(domain) ? remainderRe.exec(remainder) : null;
  if (!match) throw invalid(diagnose(input, domain, remainder));
  const [, path = "", tag, digest] = match;

  if (path.length > REPOSITORY_NAME_MAX_LENGTH) {
    throw invalid(
      `repository name must not be more than ${REPOSITORY_NAME_MAX_LENGTH} characters (${q(path)} is ${path.length})`,
    );
  }
  if (digest !== undefined) checkDigest(digest);

  const ref: ImageReference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** Canonical repository name without tag/digest: "docker.io/library/alpine". */
export function repositoryName(ref: ImageReference): string {
  return ref.domain === "" ? ref.path : `${ref.domain}/${ref.path}`;
}

function withTagAndDigest(name: string, ref: ImageReference): string {
  let s = name;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/**
 * Full canonical string: "docker.io/library/alpine:3.8",
 * "docker.io/library/alpine@sha256:…", "docker.io/library/alpine:3.8@sha256:…".
 */
export function formatReference(ref: ImageReference): string {
  return withTagAndDigest(repositoryName(ref), ref);
}

/**
 * Familiar (short) repository name as `docker images` shows it: "alpine", "user/app",
 * "localhost:5000/x", "ghcr.io/user/app". No tag or digest.
 */
export function familiarRepository(ref: ImageReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repositoryName(ref);
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    // "library/foo/bar" is not an official image and keeps its namespace.
    if (!rest.includes("/")) return rest;
  }
  return ref.path;
}

/** Familiar full string: "alpine:3.8", "localhost:5000/x:latest", "alpine@sha256:…". */
export function familiarString(ref: ImageReference): string {
  return withTagAndDigest(familiarRepository(ref), ref);
}

/**
 * Does the user's argument denote an image ID (or ID prefix) rather than a name?
 * True for 12–64 lowercase hex characters ("3f2a9c1d0b7e", a full 64-hex ID, which
 * docker never accepts as a name) and for "sha256:" followed by 1–64 hex characters.
 */
export function looksLikeImageId(input: string): boolean {
  return imageIdRe.test(input);
}
