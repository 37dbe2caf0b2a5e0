/**
 * `images` / `image ls`: one row per repository:tag, Docker's columns,
 * `--filter` (dangling, label, reference, before, since: same key ORed,
 * different keys ANDed) and `--format` (Docker's fields, table, json).
 */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { shortId } from "../image/digest.js";
import { familiarTags, findImage } from "../image/images.js";
import { parseImageConfig } from "../image/manifest.js";
import { familiarString, parseReference } from "../image/reference.js";
import type { ImageRecord, Store } from "../image/store.js";
import { contextFrom } from "./context.js";
import { allKeysMatch, labelMatches, parseFilter, requireValues } from "./filters.js";
import { goTime, humanSize, table, timeAgo } from "./format.js";
import { formatList } from "./list-format.js";
import { collect } from "./options.js";

interface ListOptions {
  all?: boolean;
  quiet?: boolean;
  digests?: boolean;
  trunc: boolean;
  filter?: string[];
  format?: string;
}

interface ImageRow {
  repo: string;
  tag: string;
  digest: string;
  id: string;
  created: string;
  size: number;
  labels: Record<string, string>;
  dangling: boolean;
}

const FILTER_KEYS = ["dangling", "label", "reference", "before", "since"];

/** The columns `--format 'table …'` heads each field with (Docker's names). */
const IMAGE_HEADERS = {
  ID: "IMAGE ID",
  Repository: "REPOSITORY",
  Tag: "TAG",
  Digest: "DIGEST",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  Size: "SIZE",
  Containers: "CONTAINERS",
  SharedSize: "SHARED SIZE",
  UniqueSize: "UNIQUE SIZE",
  VirtualSize: "SIZE",
};

export function registerImageList(program: Command, image: Command): void {
  for (const [parent, name] of [
    [program, "images"],
    [image, "ls"],
  ] as const) {
    parent
      .command(name)
      .description("List images")
      .argument("[repository]", "only images of this repository")
      .option("-a, --all", "also the intermediate images of builds")
      .option("-q, --quiet", "only image IDs")
      .option("--digests", "show digests")
      .option("--no-trunc", "full image IDs")
      .option(
        "-f, --filter <key=value>",
        "dangling, label, reference, before, since (repeatable)",
        collect,
      )
      .option("--format <template>", "a Go template, 'table TEMPLATE' or 'json'")
      .action(async (repository: string | undefined, opts: ListOptions, cmd: Command) => {
        await listImages(cmd, repository, opts);
      });
  }
}

async function listImages(
  cmd: Command,
  repository: string | undefined,
  opts: ListOptions,
): Promise<void> {
  const ctx = contextFrom(cmd);
  const wanted = repository
    ? familiarString(parseReference(repository)).replace(/:latest$/, "")
    : undefined;
  const keep = await imageFilter(ctx.store, opts.filter ?? []);
  const rows = (await imageRows(ctx.store, Boolean(opts.all))).filter(
    (r) => (!wanted || r.repo === wanted) && keep(r),
  );
  rows.sort((a, b) => b.created.localeCompare(a.created) || a.repo.localeCompare(b.repo));
  if (opts.quiet) {
    for (const id of new Set(rows.map((r) => (opts.trunc ? shortId(r.id) : r.id)))) console.log(id);
    return;
  }
  const fields = rows.map((r) => imageFields(r, opts.trunc));
  for (const line of formatList(opts.format, fields, IMAGE_HEADERS, () =>
    imagesTable(fields, opts),
  ))
    console.log(line);
}

async function imageFilter(store: Store, texts: string[]): Promise<(r: ImageRow) => boolean> {
  const filters = texts.map((t) => parseFilter(t, FILTER_KEYS));
  requireValues(
    filters,
    FILTER_KEYS.filter((k) => k !== "label"),
  );
  const times = new Map<string, string>();
  for (const f of filters) {
    if (f.key === "dangling" && !["true", "false", "1", "0"].includes(f.value))
      throw new MiniboxError(`invalid filter 'dangling=${f.value}'`, "use dangling=true or false");
    if (f.key === "before" || f.key === "since") {
      const image = await findImage(store, f.value);
      if (!image)
        throw new MiniboxError(`No such image: ${f.value}`, "name an image `images` lists");
      times.set(f.value, await configOf(store, image.record).then((c) => c.created));
    }
  }
  return (r) =>
    allKeysMatch(filters, (f) => {
      switch (f.key) {
        case "dangling":
          return r.dangling === (f.value === "true" || f.value === "1");
        case "label":
          return labelMatches(f.value, r.labels);
        case "reference":
          return referenceMatches(f.value, r);
        case "before":
          return r.created < (times.get(f.value) as string);
        default:
          return r.created > (times.get(f.value) as string);
      }
    });
}

/** Docker matches reference=PATTERN (path.Match globs) against "repo" and "repo:tag". */
function referenceMatches(pattern: string, r: ImageRow): boolean {
  if (r.dangling) return false;
  const glob = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|\\]/g, "\\$&")
      .replace(/\*/g, "[^/]*")
      .replace(/\?/g, "[^/]")}$`,
  );
  return glob.test(r.repo) || glob.test(`${r.repo}:${r.tag}`);
}

/** One row per repository:tag of each image (one <none> row for an untagged one). */
async function imageRows(store: Store, all: boolean): Promise<ImageRow[]> {
  const images = await store.listImages();
  // Docker hides a build's untagged intermediate images (those with children) unless -a.
  const parents = new Set(images.map((i) => i.record.parent));
  const rows: ImageRow[] = [];
  for (const { record, tags } of images) {
    if (!all && tags.length === 0 && parents.has(record.id)) continue;
    const { created, labels } = await configOf(store, record);
    const digests = repoDigests(record.repoDigests);
    const names = familiarTags(tags);
    const entries = names.length ? names.map(splitTag) : [{ repo: "<none>", tag: "<none>" }];
    for (const { repo, tag } of entries) {
      const digest = digests.get(repo) ?? "<none>";
      const dangling = names.length === 0;
      rows.push({ repo, tag, digest, id: record.id, created, size: record.size, labels, dangling });
    }
  }
  return rows;
}

/** The config's created time and labels ("" and none when it cannot be read). */
async function configOf(
  store: Store,
  record: ImageRecord,
): Promise<{ created: string; labels: Record<string, string> }> {
  try {
    const config = parseImageConfig(await store.readBlob(record.id));
    return { created: config.created ?? "", labels: config.config?.Labels ?? {} };
  } catch {
    return { created: "", labels: {} };
  }
}

/** Each repository knows the image by its own repo digest (pulled or pushed there). */
function repoDigests(repoDigests: string[]): Map<string, string> {
  return new Map(
    repoDigests.map((rd) => {
      const at = rd.lastIndexOf("@");
      const repo = familiarString(parseReference(rd.slice(0, at))).replace(/:latest$/, "");
      return [repo, rd.slice(at + 1)] as const;
    }),
  );
}

/** One image as Docker's images formatter exposes it (keys sorted, as `--format json` prints them). */
function imageFields(r: ImageRow, trunc: boolean) {
  return {
    Containers: "N/A",
    CreatedAt: goTime(r.created),
    CreatedSince: timeAgo(r.created),
    Digest: r.digest,
    ID: trunc ? shortId(r.id) : r.id,
    Repository: r.repo,
    SharedSize: "N/A",
    Size: humanSize(r.size),
    Tag: r.tag,
    UniqueSize: "N/A",
    VirtualSize: humanSize(r.size),
  };
}

type ImageFields = ReturnType<typeof imageFields>;

function imagesTable(rows: ImageFields[], opts: ListOptions): string {
  const header = [
    "REPOSITORY",
    "TAG",
    ...(opts.digests ? ["DIGEST"] : []),
    "IMAGE ID",
    "CREATED",
    "SIZE",
  ];
  return table(
    header,
    rows.map((r) => [
      r.Repository,
      r.Tag,
      ...(opts.digests ? [r.Digest] : []),
      r.ID,
      r.CreatedSince,
      r.Size,
    ]),
  );
}

function splitTag(name: string): { repo: string; tag: string } {
  const colon = name.lastIndexOf(":");
  return colon > name.lastIndexOf("/")
    ? { repo: name.slice(0, colon), tag: name.slice(colon + 1) }
    : { repo: name, tag: "latest" };
}
