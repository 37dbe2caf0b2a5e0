/**
 * The --format template engine against examples from Docker's documentation
 * ("Format command and log output", docker ps/images/inspect reference).
 */
import { describe, expect, it } from "vitest";
import { formatList, tabwrite } from "../../src/cli/list-format.js";
import { renderTemplate } from "../../src/cli/template.js";

const container = {
  Name: "/container",
  Image: "ubuntu:20.04",
  Args: ["-c", "sleep 10"],
  Config: { Labels: { "com.example.vendor": "ACME", version: "1.0" }, Env: ["A=1", "B=2"] },
  State: { Pid: 4242, Running: true, Status: "running" },
  NetworkSettings: {
    Networks: { bridge: { IPAddress: "172.17.0.2" }, mynet: { IPAddress: "172.18.0.3" } },
    Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] },
  },
};

describe("template functions (Docker's 'Format command and log output')", () => {
  it.each([
    ['{{join .Args " , "}}', "-c , sleep 10"],
    ["{{json .Config.Env}}", '["A=1","B=2"]'],
    ["{{lower .Name}}", "/container"],
    ["{{upper .Name}}", "/CONTAINER"],
    ["{{title .Name}}", "/Container"],
    ['{{split .Image ":"}}', "[ubuntu 20.04]"],
    ["{{pad .Name 2 1}}", "  /container "],
    ["{{truncate .Name 4}}", "/con"],
    [
      "{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}",
      "172.17.0.2\n172.18.0.3\n",
    ],
    ["{{.State.Pid}}", "4242"],
    ['{{index .Config.Labels "com.example.vendor"}}', "ACME"],
    ['{{index .Config.Labels "missing"}}', ""],
    ['{{printf "%s-%d" .Image .State.Pid}}', "ubuntu:20.04-4242"],
    ['{{printf "%-6s|" "ab"}}', "ab    |"],
    ["{{.Name | upper}}", "/CONTAINER"],
    ["{{.Config.Labels}}", "map[com.example.vendor:ACME version:1.0]"],
    ["{{.Args}}", "[-c sleep 10]"],
    ["{{if .State.Running}}up{{else}}down{{end}}", "up"],
    ['{{if eq .State.Status "exited"}}E{{else if .State.Running}}R{{end}}', "R"],
    ["{{with .State}}{{.Status}}{{end}}", "running"],
    [
      "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
      "com.example.vendor=ACME;version=1.0;",
    ],
    [
      "{{range $p, $conf := .NetworkSettings.Ports}} {{$p}} -> {{(index $conf 0).HostPort}} {{end}}",
      " 80/tcp -> 8080 ",
    ],
    ["{{range .Nope2}}x{{else}}none{{end}}", "none"],
    ["a  {{- .State.Pid -}}  b", "a4242b"],
    ["{{len .Args}}", "2"],
    ["{{json .State}}", '{"Pid":4242,"Running":true,"Status":"running"}'],
  ])("%s", (template, expected) => {
    const data = { ...container, Nope2: [] };
    expect(renderTemplate(template, data)).toBe(expected);
  });

  it('calls methods with arguments: {{.Label "k"}}', () => {
    const row = {
      ID: "a87ecb4f327c",
      Label: (k: string) => ({ "com.docker.swarm.node": "ubuntu" })[k] ?? "",
    };
    expect(renderTemplate('{{.ID}} {{.Label "com.docker.swarm.node"}}', row)).toBe(
      "a87ecb4f327c ubuntu",
    );
  });
});

describe("template errors: one line, Docker's words", () => {
  it.each([
    ["{{.Name", /^template parsing error: template: :1: unclosed action/],
    ["{{foo .Name}}", /^template parsing error: template: :1: function "foo" not defined/],
    ["{{end}}", /^template parsing error: .*unexpected \{\{end\}\}/],
    ["{{if .Name}}x", /^template parsing error: .*unexpected EOF/],
    ["{{range .Args}}", /^template parsing error: .*unexpected EOF/],
  ])("%s", (template, message) => {
    expect(() => renderTemplate(template, container)).toThrow(message);
  });

  it("a missing field is an execution error naming the field", () => {
    expect(() => renderTemplate("{{.Nope}}", container)).toThrow(
      /template: :1: executing "" at <.Nope>: can't evaluate field Nope/,
    );
  });
});

describe("list formats (docker ps/images --format)", () => {
  const rows = [
    {
      ID: "a87ecb4f327c",
      Image: "ubuntu",
      Labels: "com.docker.swarm.node=ubuntu,com.docker.swarm.storage=ssd",
    },
    { ID: "01946d9d34d8", Image: "busybox:latest", Labels: "" },
  ];
  const headers = { ID: "CONTAINER ID", Image: "IMAGE", Labels: "LABELS", Label: "LABEL" };

  it("table: headers from the field names, columns aligned like Docker's tabwriter", () => {
    expect(formatList("table {{.ID}}\\t{{.Labels}}", rows, headers, () => "")).toEqual([
      [
        "CONTAINER ID   LABELS",
        "a87ecb4f327c   com.docker.swarm.node=ubuntu,com.docker.swarm.storage=ssd",
        "01946d9d34d8   ",
      ].join("\n"),
    ]);
    // Short columns are 10 wide: "IMAGE" + 5 spaces, as `docker ps` prints it.
    expect(formatList("table {{.Image}}\\t{{.ID}}", rows.slice(0, 1), headers, () => "")).toEqual([
      "IMAGE     CONTAINER ID\nubuntu    a87ecb4f327c",
    ]);
  });

  it("a plain template: one line per item, no header", () => {
    expect(formatList("{{.ID}}: {{.Image}}", rows, headers, () => "")).toEqual([
      "a87ecb4f327c: ubuntu",
      "01946d9d34d8: busybox:latest",
    ]);
  });

  it("json: one object per line; table alone: the default table", () => {
    expect(formatList("json", rows.slice(1), headers, () => "")).toEqual([
      '{"ID":"01946d9d34d8","Image":"busybox:latest","Labels":""}',
    ]);
    expect(formatList("table", rows, headers, () => "DEFAULT")).toEqual(["DEFAULT"]);
    expect(formatList(undefined, rows, headers, () => "DEFAULT")).toEqual(["DEFAULT"]);
  });

  it("tabwriter leaves the last cell unpadded", () => {
    expect(tabwrite("a\tbb\tc\nxxxxxxxxxxxx\ty\tz")).toBe(
      "a              bb        c\nxxxxxxxxxxxx   y         z",
    );
  });
});
