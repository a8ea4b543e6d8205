package argocdhealth

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// customizations is Argo CD's resource_customizations layout: <group>/<Kind>/{health.lua,health_test.yaml,testdata}.
const customizations = "../../config/argocd/resource_customizations"

// argocdCM is the ready-made argocd-cm patch that carries the same scripts (docs/argocd.md).
const argocdCM = "../../config/argocd/argocd-cm.yaml"

var update = flag.Bool("update", false, "rewrite config/argocd/argocd-cm.yaml from the health.lua files")

// Every kind must be tested in each of these statuses, more than once.
var requiredStatuses = []string{"Healthy", "Progressing", "Degraded", "Suspended"}

const casesPerStatus = 2

// Globals a health script may use: the object, and base-library functions. Not string, math, os, json...
var allowedGlobals = map[string]bool{
	"obj": true, "ipairs": true, "pairs": true, "next": true, "type": true, "tostring": true, "tonumber": true,
	"select": true, "error": true, "assert": true, "pcall": true, "rawget": true, "rawequal": true,
	"unpack": true, "table": true,
}

type healthTests struct {
	Tests []struct {
		HealthStatus HealthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

type customization struct {
	group, kind, dir string
	script           string
}

func findCustomizations(t *testing.T) []customization {
	t.Helper()
	scripts, err := filepath.Glob(filepath.Join(customizations, "*", "*", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	var out []customization
	for _, path := range scripts {
		dir := filepath.Dir(path)
		script, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, customization{
			group:  filepath.Base(filepath.Dir(dir)),
			kind:   filepath.Base(dir),
			dir:    dir,
			script: string(script),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir < out[j].dir })
	kinds := map[string]bool{}
	for _, c := range out {
		kinds[c.group+"/"+c.kind] = true
	}
	for _, want := range []string{
		"telegram.tdlib-operator.dev/TelegramAccount",
		"telegram.tdlib-operator.dev/Campaign",
		"telegram.tdlib-operator.dev/TelegramRuntimePool",
	} {
		if !kinds[want] {
			t.Fatalf("no health.lua for %s under %s", want, customizations)
		}
	}
	return out
}

func readTests(t *testing.T, c customization) healthTests {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(c.dir, "health_test.yaml"))
	if err != nil {
		t.Fatalf("%s/%s: %v", c.group, c.kind, err)
	}
	var tests healthTests
	if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
		t.Fatalf("%s/%s/health_test.yaml: %v", c.group, c.kind, err)
	}
	if len(tests.Tests) == 0 {
		t.Fatalf("%s/%s/health_test.yaml has no tests", c.group, c.kind)
	}
	return tests
}

func readObject(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

// TestHealthChecks runs every case of every health_test.yaml, as Argo CD's `go test ./util/lua/` does, but in
// the sandbox of a script configured in argocd-cm (no open libraries).
func TestHealthChecks(t *testing.T) {
	for _, c := range findCustomizations(t) {
		tests := readTests(t, c)
		for _, tc := range tests.Tests {
			name := c.group + "/" + c.kind + "/" + tc.InputPath
			t.Run(name, func(t *testing.T) {
				obj := readObject(t, filepath.Join(c.dir, tc.InputPath))
				if obj["kind"] != c.kind || !strings.HasPrefix(obj["apiVersion"].(string), c.group+"/") {
					t.Fatalf("testdata is a %v %v, not a %s/%s", obj["apiVersion"], obj["kind"], c.group, c.kind)
				}
				got, err := RunHealth(c.script, obj)
				if err != nil {
					t.Fatalf("health.lua failed: %v", err)
				}
				if got != tc.HealthStatus {
					t.Errorf("health\n got: %s / %q\nwant: %s / %q", got.Status, got.Message,
						tc.HealthStatus.Status, tc.HealthStatus.Message)
				}
			})
		}
	}
}

// TestEveryStatusCovered: each kind's health_test.yaml has several cases of every status, and every
// testdata file is used.
func TestEveryStatusCovered(t *testing.T) {
	for _, c := range findCustomizations(t) {
		tests := readTests(t, c)
		perStatus := map[string]int{}
		used := map[string]bool{}
		for _, tc := range tests.Tests {
			perStatus[tc.HealthStatus.Status]++
			if used[tc.InputPath] {
				t.Errorf("%s/%s: %s is tested twice", c.group, c.kind, tc.InputPath)
			}
			used[tc.InputPath] = true
			if tc.HealthStatus.Message == "" {
				t.Errorf("%s/%s: %s expects no message; every status must say why", c.group, c.kind, tc.InputPath)
			}
		}
		for _, status := range requiredStatuses {
			if perStatus[status] < casesPerStatus {
				t.Errorf("%s/%s: %d cases expect %s, want at least %d", c.group, c.kind, perStatus[status], status,
					casesPerStatus)
			}
		}
		files, err := filepath.Glob(filepath.Join(c.dir, "testdata", "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if rel := "testdata/" + filepath.Base(file); !used[rel] {
				t.Errorf("%s/%s: %s is not in health_test.yaml", c.group, c.kind, rel)
			}
		}
		t.Logf("%s/%s: %d cases %v", c.group, c.kind, len(tests.Tests), perStatus)
	}
}

// TestScriptsNeedNoLibraries checks the compiled scripts, so branches no case reaches count too: Lua 5.1 syntax
// (gopher-lua compiles them), no global but the object and base functions, no method calls (a string has no
// methods without the string library), no global assignments.
func TestScriptsNeedNoLibraries(t *testing.T) {
	for _, c := range findCustomizations(t) {
		analysis, err := Analyze(c.script, c.kind+"/health.lua")
		if err != nil {
			t.Errorf("%s/%s/health.lua does not compile on gopher-lua: %v", c.group, c.kind, err)
			continue
		}
		for _, g := range analysis.Globals {
			if g.Write {
				t.Errorf("%s/%s/health.lua:%d assigns the global %q; use a local", c.group, c.kind, g.Line, g.Name)
			} else if !allowedGlobals[g.Name] {
				t.Errorf("%s/%s/health.lua:%d uses the global %q, which Argo CD does not provide without open libraries",
					c.group, c.kind, g.Line, g.Name)
			}
		}
		for _, line := range analysis.MethodCalls {
			t.Errorf("%s/%s/health.lua:%d calls a method (value:name()), which needs the string library on strings",
				c.group, c.kind, line)
		}
	}
}

// TestSandboxHasNoOpenLibraries proves the harness is as strict as Argo CD: the string library (and math) is
// really absent, while base, table and os.time are there.
func TestSandboxHasNoOpenLibraries(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"name": "x"}}
	for _, script := range []string{
		`local i = string.find(obj.metadata.name, "x") return { status = "Healthy", message = "found" }`,
		`local i = obj.metadata.name:find("x") return { status = "Healthy", message = "found" }`,
		`local s = ("%d"):format(1) return { status = "Healthy", message = s }`,
		`return { status = "Healthy", message = tostring(math.floor(1.5)) }`,
		`local x = 7 // 2 return { status = "Healthy", message = "5.3 syntax" }`,
	} {
		got, err := RunHealth(script, obj)
		if err == nil {
			t.Errorf("script ran without open libraries, want an error: %s -> %+v", script, got)
		} else {
			t.Logf("as expected: %v", strings.SplitN(err.Error(), "\n", 2)[0])
		}
	}

	got, err := RunHealth(`
local parts = {}
for _, c in ipairs(obj.status.conditions) do table.insert(parts, c.type .. "=" .. tostring(c.status)) end
local t = os.time()
return { status = "Healthy", message = table.concat(parts, ",") .. " " .. type(t) .. " " .. obj.metadata.generation }`,
		map[string]any{
			"metadata": map[string]any{"generation": float64(3)},
			"status": map[string]any{"conditions": []any{
				map[string]any{"type": "Ready", "status": "True"},
				map[string]any{"type": "Scheduled", "status": "False"},
			}},
		})
	if err != nil {
		t.Fatalf("base, table and os.time must be available: %v", err)
	}
	if want := (HealthStatus{Status: "Healthy", Message: "Ready=True,Scheduled=False number 3"}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}

	got, err = RunHealth(`return { status = "Fine", message = "x" }`, obj)
	if err != nil || got != (HealthStatus{Status: "Unknown", Message: invalidHealthStatus}) {
		t.Errorf("an invalid status must become Unknown as in Argo CD, got %+v, %v", got, err)
	}

	if _, err := RunHealth(`while true do end`, obj); err == nil {
		t.Errorf("a script that never ends must be stopped by the deadline")
	}
}

// TestAnalyzeFindsLibraryUse makes sure the bytecode scan in TestScriptsNeedNoLibraries sees what it must.
func TestAnalyzeFindsLibraryUse(t *testing.T) {
	analysis, err := Analyze(`
local function f(s) if s then return string.find(s, "a") end return s:upper() end
hs = {}
return f`, "probe")
	if err != nil {
		t.Fatal(err)
	}
	var reads, writes []string
	for _, g := range analysis.Globals {
		if g.Write {
			writes = append(writes, g.Name)
		} else {
			reads = append(reads, g.Name)
		}
	}
	if strings.Join(reads, ",") != "string" || strings.Join(writes, ",") != "hs" || len(analysis.MethodCalls) != 1 {
		t.Errorf("got reads %v, writes %v, method calls on lines %v", reads, writes, analysis.MethodCalls)
	}
	if _, err := Analyze(`local x = 5 & 1`, "bitwise"); err == nil {
		t.Errorf("gopher-lua must reject Lua 5.3 bitwise operators")
	}
}

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]any    `json:"metadata"`
	Data       map[string]string `json:"data"`
}

// configKey is the argocd-cm key Argo CD reads a health script from: resource.customizations.health.<group>_<Kind>.
func configKey(c customization) string {
	return "resource.customizations.health." + c.group + "_" + c.kind
}

// renderConfigMap writes the argocd-cm patch by hand (not yaml.Marshal) to keep the key order a reader expects and
// each script as a literal block.
func renderConfigMap(found []customization) string {
	var out strings.Builder
	out.WriteString("# Argo CD health checks for tdlib-operator's kinds (docs/argocd.md), generated from\n" +
		"# resource_customizations/*/*/health.lua by `go test ./... -args -update` in test/argocd (a test keeps it equal).\n" +
		"# Apply: kubectl -n argocd patch configmap argocd-cm --type merge --patch-file config/argocd/argocd-cm.yaml\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  labels:\n" +
		"    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\ndata:\n")
	for _, c := range found {
		out.WriteString("  " + configKey(c) + ": |\n")
		for _, line := range strings.Split(strings.TrimRight(c.script, "\n"), "\n") {
			if line == "" {
				out.WriteString("\n")
			} else {
				out.WriteString("    " + line + "\n")
			}
		}
	}
	return out.String()
}

// TestArgoCDConfigMapMatchesScripts keeps config/argocd/argocd-cm.yaml equal to the scripts (`go test -update`
// rewrites it).
func TestArgoCDConfigMapMatchesScripts(t *testing.T) {
	found := findCustomizations(t)
	if *update {
		if err := os.WriteFile(argocdCM, []byte(renderConfigMap(found)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(argocdCM)
	if err != nil {
		t.Fatalf("%v (run `go test ./... -args -update` in test/argocd)", err)
	}
	var cm configMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		t.Fatalf("%s: %v", argocdCM, err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata["name"] != "argocd-cm" {
		t.Errorf("%s is not the argocd-cm ConfigMap: %s %s %v", argocdCM, cm.APIVersion, cm.Kind, cm.Metadata["name"])
	}
	if len(cm.Data) != len(found) {
		t.Errorf("%s has %d keys, want one per health.lua (%d)", argocdCM, len(cm.Data), len(found))
	}
	for _, c := range found {
		if cm.Data[configKey(c)] != c.script {
			t.Errorf("%s: %s differs from %s/health.lua; run `go test ./... -args -update` in test/argocd",
				argocdCM, configKey(c), c.dir)
		}
	}
}
