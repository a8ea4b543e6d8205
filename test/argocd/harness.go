// Package argocdhealth runs the Argo CD health checks in config/argocd/resource_customizations the way Argo CD
// runs a health script configured in argocd-cm: on gopher-lua (the interpreter Argo CD embeds, Lua 5.1),
// without the standard libraries (resource.customizations.useOpenLibs is false by default), with only what
// Argo CD always opens (package, base, table and a reduced os), a one-second deadline, and the live object in
// the global `obj`. See argoproj/argo-cd util/lua/lua.go (runLua, ExecuteHealthLua, decodeValue).
package argocdhealth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// HealthStatus is what a health script returns (Argo CD's health.HealthStatus).
type HealthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// validStatuses are the codes Argo CD accepts from a script; anything else becomes Unknown.
var validStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

const invalidHealthStatus = "Lua returned an invalid health status"

// scriptTimeout is Argo CD's deadline for one script run.
const scriptTimeout = time.Second

// newSandbox returns a Lua state like Argo CD's for a script without open libraries.
func newSandbox() (*lua.LState, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			l.Close()
			return nil, fmt.Errorf("opening %q: %w", lib.name, err)
		}
	}
	// `local os = require("os")` gets the same reduced library.
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int {
		l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
		return 1
	})
	return l, nil
}

// safeOsFuncs is the part of os Argo CD exposes: time and date, nothing that reads, writes or exits.
var safeOsFuncs = map[string]lua.LGFunction{
	"time": osTime,
	"date": osDate,
}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.OsLibName, safeOsFuncs))
	return 1
}

func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t := l.CheckTable(1)
	field := func(name string, fallback int) int {
		if n, ok := t.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return fallback
	}
	at := time.Date(field("year", 1970), time.Month(field("month", 1)), field("day", 1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(at.Unix()))
	return 1
}

// osDate supports what health scripts use: "*t" / "!*t" (a table) and a few strftime fields.
func osDate(l *lua.LState) int {
	format := l.OptString(1, "%c")
	at := time.Now()
	if l.GetTop() >= 2 {
		at = time.Unix(l.CheckInt64(2), 0)
	}
	if strings.HasPrefix(format, "!") {
		at = at.UTC()
		format = format[1:]
	}
	if strings.HasPrefix(format, "*t") {
		t := l.NewTable()
		for name, value := range map[string]int{
			"year": at.Year(), "month": int(at.Month()), "day": at.Day(), "hour": at.Hour(),
			"min": at.Minute(), "sec": at.Second(), "wday": int(at.Weekday()) + 1, "yday": at.YearDay(),
		} {
			t.RawSetString(name, lua.LNumber(value))
		}
		t.RawSetString("isdst", lua.LFalse)
		l.Push(t)
		return 1
	}
	layouts := map[byte]string{'Y': "2006", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05", 'c': time.ANSIC}
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] == '%' && i+1 < len(format) {
			if layout, ok := layouts[format[i+1]]; ok {
				out.WriteString(at.Format(layout))
				i++
				continue
			}
		}
		out.WriteByte(format[i])
	}
	l.Push(lua.LString(out.String()))
	return 1
}

// toLua converts a decoded JSON/YAML value into Lua values the way Argo CD's decodeValue does: objects and
// arrays become tables, numbers LNumber, json.Number a string, null nil.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetH(lua.LString(key), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

// RunHealth runs a health script on obj as Argo CD would, and returns its verdict.
func RunHealth(script string, obj map[string]any) (HealthStatus, error) {
	l, err := newSandbox()
	if err != nil {
		return HealthStatus{}, err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return HealthStatus{}, err
	}
	returned, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return HealthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	status, ok := returned.RawGetString("status").(lua.LString)
	if !ok {
		return HealthStatus{}, fmt.Errorf("status is %s, not a string", returned.RawGetString("status").Type())
	}
	var message string
	switch m := returned.RawGetString("message").(type) {
	case lua.LString:
		message = string(m)
	case *lua.LNilType:
	default:
		return HealthStatus{}, fmt.Errorf("message is %s, not a string", m.Type())
	}
	if !validStatuses[string(status)] {
		return HealthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return HealthStatus{Status: string(status), Message: message}, nil
}

// Instruction fields of gopher-lua's bytecode (opcode.go: 6-bit opcode, 8-bit A, 9-bit B and C, 18-bit Bx).
func opCode(inst uint32) int { return int(inst >> 26) }
func argBx(inst uint32) int  { return int(inst & 0x3ffff) }

// GlobalAccess is one global name a script reads or writes, anywhere in it (run or not).
type GlobalAccess struct {
	Name  string
	Write bool
	Line  int
}

// ScriptAnalysis is what the compiled script shows without running it.
type ScriptAnalysis struct {
	Globals     []GlobalAccess
	MethodCalls []int // lines of `value:method(...)` calls (OP_SELF)
}

// Analyze compiles a script with gopher-lua (so Lua 5.3 syntax such as `//` or `&` fails here) and lists
// every global it touches and every method call, across all its functions.
func Analyze(script, name string) (ScriptAnalysis, error) {
	chunk, err := parse.Parse(strings.NewReader(script), name)
	if err != nil {
		return ScriptAnalysis{}, err
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return ScriptAnalysis{}, err
	}
	var out ScriptAnalysis
	var walk func(p *lua.FunctionProto)
	walk = func(p *lua.FunctionProto) {
		for pc, inst := range p.Code {
			line := 0
			if pc < len(p.DbgSourcePositions) {
				line = p.DbgSourcePositions[pc]
			}
			switch opCode(inst) {
			case lua.OP_GETGLOBAL, lua.OP_SETGLOBAL:
				out.Globals = append(out.Globals, GlobalAccess{
					Name:  p.Constants[argBx(inst)].String(),
					Write: opCode(inst) == lua.OP_SETGLOBAL,
					Line:  line,
				})
			case lua.OP_SELF:
				out.MethodCalls = append(out.MethodCalls, line)
			}
		}
		for _, nested := range p.FunctionPrototypes {
			walk(nested)
		}
	}
	walk(proto)
	return out, nil
}
