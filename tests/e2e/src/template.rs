//! `template.yaml` read as data: the functions (binary, memory, timeout), the rules with their
//! exact event patterns, the resources' properties, and a resolver for `!Ref`, `!Sub` and
//! `!GetAtt` so the functions' environment comes from the template's own `Globals`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

/// The parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole document.
    pub doc: Yaml,
}

/// A Lambda function of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Logical id, e.g. `StageAdvanceFunction`.
    pub logical_id: String,
    /// The binary's name: what `sam build` builds (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// MB, for the GB-second price.
    pub memory_mb: u64,
    #[allow(missing_docs)]
    pub timeout_secs: u64,
}

/// Where a rule sends matching events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleTarget {
    /// A function of the template, by binary name.
    Function(String),
    /// An SNS topic (logical id), given the part of the event at `input_path` (`$.a.b`).
    Topic {
        #[allow(missing_docs)]
        logical_id: String,
        #[allow(missing_docs)]
        input_path: Option<String>,
    },
}

/// An EventBridge rule of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `<resource>` or `<function>.<event>`.
    pub name: String,
    /// The event pattern, exactly as written.
    pub pattern: Json,
    /// `true` for the functions' own bus (`EventBusName: !Ref EventsBus`), `false` for the
    /// account's default bus (AWS services' events).
    pub custom_bus: bool,
    #[allow(missing_docs)]
    pub target: RuleTarget,
}

/// A Lambda event source mapping on the table's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSource {
    /// The function's binary name.
    pub function: String,
    /// The mapping's filter patterns (a record passes if it matches any).
    pub filters: Vec<Json>,
    /// Records per invocation at most.
    pub batch_size: usize,
}

/// Values the resolver substitutes.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// `!Ref X` and `${X}`.
    pub refs: BTreeMap<String, String>,
    /// `!GetAtt X.Attr` and `${X.Attr}`.
    pub atts: BTreeMap<String, String>,
}

impl Template {
    /// Reads `template.yaml`.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: Yaml = serde_norway::from_str(&text).context("template.yaml is not YAML")?;
        Ok(Self { doc })
    }

    /// The resource `logical_id`.
    pub fn resource(&self, logical_id: &str) -> Result<&Yaml> {
        self.doc
            .get("Resources")
            .and_then(|r| r.get(logical_id))
            .ok_or_else(|| anyhow!("template.yaml has no resource {logical_id}"))
    }

    /// The properties of resource `logical_id`.
    pub fn properties(&self, logical_id: &str) -> Result<&Yaml> {
        self.resource(logical_id)?
            .get("Properties")
            .ok_or_else(|| anyhow!("resource {logical_id} has no Properties"))
    }

    /// Logical ids of every resource of `kind`, in template order.
    pub fn resources_of(&self, kind: &str) -> Vec<String> {
        let Some(Yaml::Mapping(resources)) = self.doc.get("Resources") else { return Vec::new() };
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Yaml::as_str) == Some(kind))
            .filter_map(|(k, _)| k.as_str().map(str::to_owned))
            .collect()
    }

    /// A parameter's default.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(self.doc.get("Parameters")?.get(name)?.get("Default")?)
    }

    /// The functions, with `Globals` applied.
    pub fn functions(&self) -> Result<Vec<Function>> {
        let globals = self.doc.get("Globals").and_then(|g| g.get("Function"));
        let global_num = |k: &str| globals.and_then(|g| g.get(k)).and_then(Yaml::as_u64);
        self.resources_of("AWS::Serverless::Function")
            .into_iter()
            .map(|id| {
                let p = self.properties(&id)?;
                let binary = self
                    .resource(&id)?
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(Yaml::as_str)
                    .ok_or_else(|| anyhow!("{id} names no Metadata.BuildProperties.Binary"))?
                    .to_owned();
                let num = |k: &str| p.get(k).and_then(Yaml::as_u64).or_else(|| global_num(k));
                Ok(Function {
                    logical_id: id.clone(),
                    binary,
                    memory_mb: num("MemorySize").unwrap_or(128),
                    timeout_secs: num("Timeout").unwrap_or(3),
                })
            })
            .collect()
    }

    /// The variables function `logical_id` sets in its own `Environment`, on top of the
    /// `Globals`' ones.
    pub fn own_environment(
        &self,
        logical_id: &str,
        bindings: &Bindings,
    ) -> Result<BTreeMap<String, String>> {
        let properties = self.properties(logical_id)?;
        let Some(vars) = properties
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Yaml::as_mapping)
        else {
            return Ok(BTreeMap::new());
        };
        vars.iter()
            .map(|(k, v)| {
                let k = k.as_str().unwrap_or_default().to_owned();
                let v = resolve(v, bindings).with_context(|| format!("{logical_id}: {k}"))?;
                Ok((k, v))
            })
            .collect()
    }

    /// Every EventBridge rule: the functions' `EventBridgeRule` events and the
    /// `AWS::Events::Rule` resources.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let mut rules = Vec::new();
        for f in self.functions()? {
            let Some(Yaml::Mapping(events)) = self.properties(&f.logical_id)?.get("Events") else {
                continue;
            };
            for (name, event) in events {
                if event.get("Type").and_then(Yaml::as_str) != Some("EventBridgeRule") {
                    continue;
                }
                let name = name.as_str().unwrap_or_default();
                let p = event.get("Properties").ok_or_else(|| anyhow!("{name}: no Properties"))?;
                rules.push(Rule {
                    name: format!("{}.{name}", f.logical_id),
                    pattern: to_json(
                        p.get("Pattern").ok_or_else(|| anyhow!("{name}: no Pattern"))?,
                    )?,
                    custom_bus: p.get("EventBusName").is_some(),
                    target: RuleTarget::Function(f.binary.clone()),
                });
            }
        }
        for id in self.resources_of("AWS::Events::Rule") {
            let p = self.properties(&id)?;
            let targets = p.get("Targets").and_then(Yaml::as_sequence).cloned().unwrap_or_default();
            for t in targets {
                let arn = t.get("Arn").ok_or_else(|| anyhow!("{id}: a target has no Arn"))?;
                let Some(topic) = ref_name(arn).filter(|r| {
                    self.resource(r).ok().and_then(|r| r.get("Type")).and_then(Yaml::as_str)
                        == Some("AWS::SNS::Topic")
                }) else {
                    bail!("{id}: only SNS topic targets are emulated");
                };
                rules.push(Rule {
                    name: id.clone(),
                    pattern: to_json(
                        p.get("EventPattern").ok_or_else(|| anyhow!("{id}: no EventPattern"))?,
                    )?,
                    custom_bus: p.get("EventBusName").is_some(),
                    target: RuleTarget::Topic {
                        logical_id: topic.to_owned(),
                        input_path: t.get("InputPath").and_then(Yaml::as_str).map(str::to_owned),
                    },
                });
            }
        }
        Ok(rules)
    }

    /// The event source mappings on the executions table's stream.
    pub fn stream_sources(&self) -> Result<Vec<StreamSource>> {
        let functions = self.functions()?;
        let mut sources = Vec::new();
        for id in self.resources_of("AWS::Lambda::EventSourceMapping") {
            let p = self.properties(&id)?;
            let target = p.get("FunctionName").and_then(ref_name);
            let function = functions
                .iter()
                .find(|f| Some(f.logical_id.as_str()) == target)
                .ok_or_else(|| anyhow!("{id}: FunctionName is no function of the template"))?;
            let filters = p
                .get("FilterCriteria")
                .and_then(|f| f.get("Filters"))
                .and_then(Yaml::as_sequence)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|f| {
                    let text = f.get("Pattern").and_then(Yaml::as_str).unwrap_or("{}");
                    serde_json::from_str(text).with_context(|| format!("{id}: a filter's Pattern"))
                })
                .collect::<Result<_>>()?;
            sources.push(StreamSource {
                function: function.binary.clone(),
                filters,
                batch_size: p.get("BatchSize").and_then(Yaml::as_u64).unwrap_or(100) as usize,
            });
        }
        Ok(sources)
    }

    /// `Globals.Function.Environment.Variables`, resolved.
    pub fn function_environment(&self, bindings: &Bindings) -> Result<BTreeMap<String, String>> {
        let vars = self
            .doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Yaml::as_mapping)
            .ok_or_else(|| anyhow!("template.yaml has no Globals.Function.Environment"))?;
        vars.iter()
            .map(|(k, v)| {
                let k = k.as_str().unwrap_or_default().to_owned();
                let v = resolve(v, bindings).with_context(|| format!("resolving {k}"))?;
                Ok((k, v))
            })
            .collect()
    }
}

/// `!Ref X` → `X`.
fn ref_name(v: &Yaml) -> Option<&str> {
    match v {
        Yaml::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value with `!Ref`, `!Sub` and `!GetAtt` substituted from `b`.
pub fn resolve(v: &Yaml, b: &Bindings) -> Result<String> {
    if let Some(s) = scalar(v) {
        return Ok(s);
    }
    let Yaml::Tagged(t) = v else { bail!("cannot resolve {v:?}") };
    let text = t.value.as_str().ok_or_else(|| anyhow!("!{} of a non-string", t.tag))?;
    let lookup = |name: &str| -> Result<String> {
        match name.split_once('.') {
            Some(_) => b.atts.get(name).cloned(),
            None => b.refs.get(name).cloned(),
        }
        .ok_or_else(|| anyhow!("nothing bound to {name}"))
    };
    if t.tag == "Ref" || t.tag == "GetAtt" {
        lookup(text)
    } else if t.tag == "Sub" {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or_else(|| anyhow!("unclosed ${{ in {text}"))?;
            out.push_str(&lookup(&rest[start + 2..start + end])?);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    } else {
        bail!("unsupported tag !{}", t.tag)
    }
}

/// YAML to JSON (patterns, policies); tags are refused, since a pattern has none.
pub fn to_json(v: &Yaml) -> Result<Json> {
    Ok(match v {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => serde_json::to_value(n)?,
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(items.iter().map(to_json).collect::<Result<_>>()?),
        Yaml::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| Ok((scalar(k).unwrap_or_default(), to_json(v)?)))
                .collect::<Result<_>>()?,
        ),
        Yaml::Tagged(t) => bail!("unexpected !{} in a JSON value", t.tag),
    })
}

impl Template {
    /// A parameter's `Type` (`String`, `CommaDelimitedList`, ...).
    fn parameter_type(&self, name: &str) -> Option<&str> {
        self.doc.get("Parameters")?.get(name)?.get("Type")?.as_str()
    }

    /// Every parameter's default that `b` does not bind yet, bound.
    pub fn bind_defaults(&self, b: &mut Bindings) {
        let Some(Yaml::Mapping(params)) = self.doc.get("Parameters") else { return };
        for (k, p) in params {
            let (Some(k), Some(v)) = (k.as_str(), p.get("Default").and_then(scalar)) else {
                continue;
            };
            b.refs.entry(k.to_owned()).or_insert(v);
        }
    }

    /// A value with every intrinsic function CloudFormation would apply resolved from `b`
    /// (`!Ref`, `!GetAtt`, `!Sub`, `!If` on the template's conditions, `!Join`, `!Split`);
    /// `None` for `!Ref AWS::NoValue`, and list items that are `None` are dropped.
    pub fn evaluate(&self, v: &Yaml, b: &Bindings) -> Result<Option<Json>> {
        let Yaml::Tagged(t) = v else {
            return Ok(Some(match v {
                Yaml::Sequence(items) => Json::Array(
                    items
                        .iter()
                        .filter_map(|i| self.evaluate(i, b).transpose())
                        .collect::<Result<_>>()?,
                ),
                Yaml::Mapping(m) => Json::Object(
                    m.iter()
                        .filter_map(|(k, v)| {
                            self.evaluate(v, b)
                                .map(|v| v.map(|v| (scalar(k).unwrap_or_default(), v)))
                                .transpose()
                        })
                        .collect::<Result<_>>()?,
                ),
                other => to_json(other)?,
            }));
        };
        let args = |n: usize| -> Result<Vec<&Yaml>> {
            let items = t.value.as_sequence().ok_or_else(|| anyhow!("!{} takes a list", t.tag))?;
            anyhow::ensure!(items.len() == n, "!{} takes {n} arguments", t.tag);
            Ok(items.iter().collect())
        };
        let text = |v: &Yaml| -> Result<String> {
            match self.evaluate(v, b)? {
                Some(Json::String(s)) => Ok(s),
                other => bail!("!{} expected a string, got {other:?}", t.tag),
            }
        };
        Ok(Some(match t.tag.to_string().trim_start_matches('!') {
            "Ref" if t.value.as_str() == Some("AWS::NoValue") => return Ok(None),
            "Ref" => {
                let name = t.value.as_str().unwrap_or_default();
                let value = resolve(v, b)?;
                if self.parameter_type(name) == Some("CommaDelimitedList") {
                    Json::Array(value.split(',').map(|s| Json::String(s.to_owned())).collect())
                } else {
                    Json::String(value)
                }
            }
            "If" => {
                let a = args(3)?;
                let name = a[0].as_str().ok_or_else(|| anyhow!("!If needs a condition name"))?;
                return self.evaluate(if self.condition(name, b)? { a[1] } else { a[2] }, b);
            }
            "Join" => {
                let a = args(2)?;
                let sep = a[0].as_str().unwrap_or_default();
                let parts = match self.evaluate(a[1], b)? {
                    Some(Json::Array(items)) => items,
                    other => bail!("!Join of {other:?}"),
                };
                let parts: Vec<String> = parts
                    .into_iter()
                    .map(|p| p.as_str().map(str::to_owned).ok_or_else(|| anyhow!("!Join of {p}")))
                    .collect::<Result<_>>()?;
                Json::String(parts.join(sep))
            }
            "Split" => {
                let a = args(2)?;
                let sep = a[0].as_str().unwrap_or_default();
                Json::Array(text(a[1])?.split(sep).map(|s| Json::String(s.to_owned())).collect())
            }
            "GetAtt" if t.value.is_sequence() => {
                let a = args(2)?;
                let name = format!("{}.{}", text(a[0])?, text(a[1])?);
                Json::String(
                    b.atts.get(&name).cloned().ok_or_else(|| anyhow!("nothing bound to {name}"))?,
                )
            }
            _ => Json::String(resolve(v, b)?),
        }))
    }

    /// The condition `name` of the template's `Conditions`, on the parameters bound in `b`.
    pub fn condition(&self, name: &str, b: &Bindings) -> Result<bool> {
        let c = self
            .doc
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| anyhow!("no condition {name}"))?;
        self.truth(c, b)
    }

    fn truth(&self, v: &Yaml, b: &Bindings) -> Result<bool> {
        let Yaml::Tagged(t) = v else { bail!("a condition must be a function, not {v:?}") };
        let items = t.value.as_sequence();
        let item = |i: usize| {
            items.and_then(|s| s.get(i)).ok_or_else(|| anyhow!("!{} lacks argument {i}", t.tag))
        };
        match t.tag.to_string().trim_start_matches('!') {
            "Equals" => Ok(self.evaluate(item(0)?, b)? == self.evaluate(item(1)?, b)?),
            "Not" => Ok(!self.truth(item(0)?, b)?),
            "And" => {
                items.into_iter().flatten().try_fold(true, |acc, c| Ok(acc && self.truth(c, b)?))
            }
            "Or" => {
                items.into_iter().flatten().try_fold(false, |acc, c| Ok(acc || self.truth(c, b)?))
            }
            "Condition" => self.condition(t.value.as_str().unwrap_or_default(), b),
            other => bail!("unsupported condition function !{other}"),
        }
    }
}
