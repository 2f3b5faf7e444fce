//! `runnel-fw-host budget`: compares what the QEMU firmware measured with the
//! checked-in budget (firmware/budget.toml) or, with `--bless`, rewrites it.
//!
//! Figures (all integers; larger is worse):
//!
//! ```text
//! [<board>]           code_bytes  runtime_code_bytes  static_ram_bytes
//! [<board>.<weights>] instructions_per_step  peak_stack_bytes  state_bytes  blob_bytes
//! [<board>.kernels]   <kernel>_milli_instructions_per_mac
//! ```
//!
//! A figure fails the check when it is more than `tolerance_percent` above its
//! budget; one more than `tolerance_percent` below it is reported (the budget
//! should be updated deliberately) but does not fail. The file is a small
//! subset of TOML: `# comments`, `[section]` and `key = integer | "string"`.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::{field, read, write, Res};

/// section -> key -> value (strings keep their quotes off)
pub type Figures = BTreeMap<String, BTreeMap<String, Val>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Int(u64),
    Str(String),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Int(n) => write!(f, "{n}"),
            Val::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Parses the TOML subset described in the module docs.
pub fn parse(text: &str) -> Res<Figures> {
    let mut out = Figures::new();
    let mut sec = String::new();
    out.insert(sec.clone(), BTreeMap::new());
    for (n, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            // no '#' inside our strings
            Some(i) => &raw[..i],
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let bad = || format!("budget line {}: cannot parse `{raw}`", n + 1);
        if let Some(s) = line.strip_prefix('[') {
            sec = s.strip_suffix(']').ok_or_else(bad)?.trim().to_string();
            out.entry(sec.clone()).or_default();
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(bad)?;
        let v = v.trim();
        let val = if let Some(s) = v.strip_prefix('"') {
            Val::Str(s.strip_suffix('"').ok_or_else(bad)?.to_string())
        } else {
            Val::Int(v.replace('_', "").parse().map_err(|_| bad())?)
        };
        out.get_mut(&sec).unwrap().insert(k.trim().to_string(), val);
    }
    Ok(out)
}

/// Formats figures as the budget file.
pub fn render(f: &Figures, header: &str) -> String {
    let mut s = String::from(header);
    let group = |n: u64| {
        let d = n.to_string();
        let mut o = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i).is_multiple_of(3) {
                o.push('_');
            }
            o.push(c);
        }
        o
    };
    for (sec, kv) in f {
        if kv.is_empty() {
            continue;
        }
        if !sec.is_empty() {
            writeln!(s, "\n[{sec}]").unwrap();
        }
        for (k, v) in kv {
            match v {
                Val::Int(n) => writeln!(s, "{k} = {}", group(*n)).unwrap(),
                Val::Str(_) => writeln!(s, "{k} = {v}").unwrap(),
            }
        }
    }
    s
}

/// Figures of one board from its decoded QEMU log and its `fw-size.sh --tsv` row.
pub fn measure(board: &str, log: &str, sizes: &str, into: &mut Figures) -> Res<()> {
    let top = into.entry(String::new()).or_default();
    let mut steps_seen = None;
    for line in log.lines() {
        if line.contains("models source=") {
            let src = field(line, "source").unwrap_or("?").to_string();
            let steps: u64 = field(line, "steps")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            for (k, v) in [("model", Val::Str(src)), ("steps", Val::Int(steps))] {
                if let Some(old) = top.get(k) {
                    if *old != v {
                        return Err(format!(
                            "{board}: {k} {v} differs from another board's {old}"
                        ));
                    }
                }
                top.insert(k.to_string(), v);
            }
            steps_seen = Some(steps);
        }
    }
    let Some(_) = steps_seen else {
        return Err(format!("{board}: no `models source=` line in the log"));
    };
    // per weight type
    let mut cur: Option<String> = None;
    let mut load_stack = 0u64;
    let num = |line: &str, k: &str| -> Res<u64> {
        field(line, k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{board}: no {k}= in `{}`", line.trim()))
    };
    for line in log.lines() {
        if line.contains("model weights=") && line.contains("blob_bytes=") {
            let w = field(line, "weights").unwrap_or("?").to_string();
            let sec = into.entry(format!("{board}.{w}")).or_default();
            sec.insert("blob_bytes".into(), Val::Int(num(line, "blob_bytes")?));
            sec.insert("state_bytes".into(), Val::Int(num(line, "state_bytes")?));
            load_stack = num(line, "load_peak_stack_bytes")?;
            cur = Some(w);
        } else if line.contains("summary steps=") {
            let Some(w) = cur.take() else { continue };
            let steps = num(line, "steps")?.max(1);
            let total = num(line, "total_instructions")?;
            let peak = num(line, "peak_stack_bytes")?.max(load_stack);
            let sec = into.get_mut(&format!("{board}.{w}")).unwrap();
            sec.insert(
                "instructions_per_step".into(),
                Val::Int((total + steps / 2) / steps),
            );
            sec.insert("peak_stack_bytes".into(), Val::Int(peak));
        } else if line.contains("bench kernel=") {
            let k = field(line, "kernel").unwrap_or("?");
            let v = num(line, "milli_instructions_per_mac")?;
            into.entry(format!("{board}.kernels"))
                .or_default()
                .insert(format!("{k}_milli_instructions_per_mac"), Val::Int(v));
        }
    }
    // sizes: the fw-size.sh --tsv row of runnel-fw-<board>
    let mut lines = sizes.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let elf = format!("runnel-fw-{board}");
    let row: Vec<&str> = lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|r| r.first() == Some(&elf.as_str()))
        .ok_or_else(|| format!("no size row for {elf}"))?;
    let col = |name: &str| -> Res<u64> {
        let i = header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("no {name} column in the sizes"))?;
        row.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad {name} for {elf}"))
    };
    let sec = into.entry(board.to_string()).or_default();
    sec.insert("code_bytes".into(), Val::Int(col("code")?));
    sec.insert("runtime_code_bytes".into(), Val::Int(col("runtime")?));
    sec.insert("static_ram_bytes".into(), Val::Int(col("ram")?));
    Ok(())
}

const HEADER: &str = "\
# Firmware budget: what the QEMU firmware measured for the demo model
# (scripts/firmware-ci.sh; docs/FIRMWARE.md \"Budget\"). CI fails when a figure
# grows more than tolerance_percent above the value here and reports one that
# shrank by more (update it deliberately). Regenerate this file with
#
#     RUNNEL_BLESS=1 RUNNEL_SKIP_INSTALL=1 scripts/firmware-ci.sh
#
# [<board>]: code_bytes = flash without the model blobs (the whole firmware,
#   all weight types share it), runtime_code_bytes = the part of it that is
#   runnel and what it pulls in (libm, soft-float), static_ram_bytes = .data +
#   .bss (mostly the arena, sized for the largest state_bytes).
# [<board>.<weights>]: instructions_per_step = average over the steps
#   (QEMU -icount shift=0; mps2-an386 to 40 instructions per reading),
#   peak_stack_bytes = max(load, steps) including the callers' frames,
#   state_bytes = the arena this blob needs, blob_bytes = its flash.
# [<board>.kernels]: instructions per multiply-accumulate x 1000 of the int8
#   kernel microbenchmarks (256-long vectors; matvec 64 x 256).
";

/// Compares (or with `bless`, writes) the budget; returns whether it passed.
pub fn budget(budget_path: &Path, measured: Figures, bless: bool) -> Res<bool> {
    let old = match std::fs::read_to_string(budget_path) {
        Ok(t) => Some(parse(&t)?),
        Err(_) if bless => None,
        Err(e) => return Err(format!("cannot read {}: {e}", budget_path.display())),
    };
    let tol = old
        .as_ref()
        .and_then(|o| o.get("").and_then(|t| t.get("tolerance_percent")).cloned())
        .and_then(|v| match v {
            Val::Int(n) => Some(n),
            Val::Str(_) => None,
        })
        .unwrap_or(10);
    if bless {
        let mut m = measured;
        m.entry(String::new())
            .or_default()
            .insert("tolerance_percent".into(), Val::Int(tol));
        write(budget_path, render(&m, HEADER))?;
        println!("budget: wrote {}", budget_path.display());
        return Ok(true);
    }
    let old = old.unwrap();
    let mut ok = true;
    // the budget is only meaningful for the same model and input length
    for k in ["model", "steps"] {
        let (b, m) = (
            old.get("").and_then(|s| s.get(k)),
            measured.get("").and_then(|s| s.get(k)),
        );
        if b != m {
            println!(
                "budget: FAIL {k}: budget is for {}, measured {} (bless to update: RUNNEL_BLESS=1)",
                b.map(Val::to_string).unwrap_or("-".into()),
                m.map(Val::to_string).unwrap_or("-".into())
            );
            ok = false;
        }
    }
    println!(
        "budget: {:<62} {:>12} {:>12} {:>8}",
        "figure (tolerance ±".to_string() + &tol.to_string() + "%)",
        "budget",
        "measured",
        "change"
    );
    let mut shrank = 0;
    for (sec, kv) in old.iter().filter(|(s, _)| !s.is_empty()) {
        for (k, v) in kv {
            let Val::Int(b) = *v else { continue };
            let name = format!("{sec}.{k}");
            let Some(&Val::Int(m)) = measured.get(sec).and_then(|s| s.get(k)) else {
                println!("budget: FAIL {name}: not measured");
                ok = false;
                continue;
            };
            let pct = if b == 0 {
                if m == 0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (m as f64 - b as f64) * 100.0 / b as f64
            };
            let verdict = if m * 100 > b * (100 + tol) {
                ok = false;
                "FAIL: grew"
            } else if m * 100 < b * (100 - tol.min(100)) {
                shrank += 1;
                "shrank: update the budget"
            } else {
                "ok"
            };
            println!("budget: {name:<62} {b:>12} {m:>12} {pct:>+7.1}% {verdict}");
        }
    }
    for (sec, kv) in measured.iter().filter(|(s, _)| !s.is_empty()) {
        for k in kv.keys() {
            if old.get(sec).and_then(|s| s.get(k)).is_none() {
                println!(
                    "budget: FAIL {sec}.{k}: measured but not in the budget (bless to add it)"
                );
                ok = false;
            }
        }
    }
    if shrank > 0 {
        println!(
            "budget: hint: {shrank} figure(s) shrank by more than {tol}%: update {} deliberately with \
             RUNNEL_BLESS=1 RUNNEL_SKIP_INSTALL=1 scripts/firmware-ci.sh",
            budget_path.display()
        );
    }
    if !ok {
        println!(
            "budget: FAILED: a figure grew more than {tol}% beyond {} (if intended, bless it: \
             RUNNEL_BLESS=1 RUNNEL_SKIP_INSTALL=1 scripts/firmware-ci.sh)",
            budget_path.display()
        );
    }
    Ok(ok)
}

/// `budget --budget FILE --logs BOARD=LOG[,BOARD=LOG] --sizes TSV [--bless 1] [--measured-out FILE]`
pub fn main(m: &BTreeMap<String, String>) -> Res<bool> {
    let need = |k: &str| m.get(k).ok_or_else(|| format!("budget: missing --{k}"));
    let sizes = String::from_utf8_lossy(&read(Path::new(need("sizes")?))?).into_owned();
    let mut measured = Figures::new();
    for spec in need("logs")?.split(',') {
        let (board, log) = spec
            .split_once('=')
            .ok_or_else(|| format!("--logs: expected BOARD=LOG, got {spec}"))?;
        let log = String::from_utf8_lossy(&read(Path::new(log))?).into_owned();
        measure(board, &log, &sizes, &mut measured)?;
    }
    if let Some(p) = m.get("measured-out") {
        write(
            Path::new(p),
            render(&measured, "# measured by runnel-fw-host budget\n"),
        )?;
    }
    let bless = m.get("bless").is_some_and(|v| !v.is_empty() && v != "0");
    budget(Path::new(need("budget")?), measured, bless)
}
