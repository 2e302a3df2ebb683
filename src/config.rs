//! Tracer configuration: keyword arguments first, then environment
//! variables, then defaults. Bad environment values fall back to the default
//! with a warning (a typo in the environment must not stop a service from
//! starting); bad keyword arguments are errors for the caller to see.

use std::path::PathBuf;

use crate::attributes::Limits;
use crate::live::LiveLimits;
use crate::sampling::TailRules;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub service_name: String,
    /// None disables files; spans are still counted and analysed.
    pub output_dir: Option<PathBuf>,
    pub buffer_size: usize,
    pub flush_interval_ms: u64,
    pub sample_rate: f64,
    /// Head sampling: at most this many new traces per second.
    pub max_traces_per_second: Option<f64>,
    /// Remote parents' sampled flag decides (the default).
    pub parent_based: bool,
    pub tail: TailRules,
    pub limits: Limits,
    pub max_file_bytes: u64,
    pub live: LiveLimits,
}

pub const DEFAULT_SERVICE: &str = "unknown_service";
pub const DEFAULT_BUFFER_SIZE: usize = 65_536;
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 500;
pub const DEFAULT_MAX_FILE_MB: u64 = 100;

impl Default for Config {
    fn default() -> Self {
        Config {
            service_name: DEFAULT_SERVICE.to_string(),
            output_dir: Some(PathBuf::from("traces")),
            buffer_size: DEFAULT_BUFFER_SIZE,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            sample_rate: 1.0,
            max_traces_per_second: None,
            parent_based: true,
            tail: TailRules::default(),
            limits: Limits::default(),
            max_file_bytes: DEFAULT_MAX_FILE_MB * 1024 * 1024,
            live: LiveLimits::default(),
        }
    }
}

/// The output directory as given: unset (use the environment), explicitly
/// disabled, or a path.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum OutputDir {
    #[default]
    FromEnv,
    Disabled,
    Path(PathBuf),
}

/// Keyword arguments as given; None means "not given".
#[derive(Clone, Debug, Default)]
pub struct ConfigOverrides {
    pub service_name: Option<String>,
    pub output_dir: OutputDir,
    pub buffer_size: Option<i64>,
    pub flush_interval_ms: Option<f64>,
    pub sample_rate: Option<f64>,
    pub max_traces_per_second: Option<f64>,
    pub parent_based: Option<bool>,
    pub keep_errors: Option<bool>,
    pub keep_slower_than_ms: Option<f64>,
    pub max_attributes: Option<i64>,
    pub max_attribute_length: Option<i64>,
    pub max_events: Option<i64>,
    pub max_file_size_mb: Option<f64>,
    pub max_recent_traces: Option<i64>,
}

/// A keyword argument with a value no tracer can use.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads environment variables; injectable for tests.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl ConfigOverrides {
    /// Resolves against `env`. Returns the config and warnings about
    /// environment values that were ignored.
    pub fn resolve(&self, env: &dyn Env) -> Result<(Config, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let d = Config::default();
        let service_name = match &self.service_name {
            Some(s) if s.trim().is_empty() => {
                return Err(ConfigError("service_name must not be empty".into()))
            }
            Some(s) => s.clone(),
            None => env
                .var("FERROTRACE_SERVICE_NAME")
                .or_else(|| env.var("OTEL_SERVICE_NAME"))
                .unwrap_or(d.service_name),
        };
        let output_dir = match &self.output_dir {
            OutputDir::Disabled => None,
            OutputDir::Path(p) => Some(p.clone()),
            OutputDir::FromEnv => match env.var("FERROTRACE_OUTPUT_DIR") {
                Some(v) if matches!(v.to_ascii_lowercase().as_str(), "none" | "off" | "-") => None,
                Some(v) => Some(PathBuf::from(v)),
                None => d.output_dir,
            },
        };
        let mut int = |given: Option<i64>, name: &str, env_key: &str, default: u64, min: i64| {
            if let Some(raw) = env.var(env_key).filter(|_| given.is_none()) {
                if raw.trim().parse::<i64>().is_err() {
                    warnings.push(format!(
                        "ignoring {env_key}={raw:?}: expected a whole number >= {min}; using {default}"
                    ));
                    return Ok(default);
                }
            }
            resolve_number(
                given.map(|v| v as f64),
                name,
                env_key,
                default as f64,
                min as f64,
                env,
                &mut warnings,
            )
            .map(|v| v as u64)
        };
        let buffer_size = int(
            self.buffer_size,
            "buffer_size",
            "FERROTRACE_BUFFER_SIZE",
            d.buffer_size as u64,
            1,
        )? as usize;
        let max_attributes = int(
            self.max_attributes,
            "max_attributes",
            "FERROTRACE_MAX_ATTRIBUTES",
            d.limits.max_attributes as u64,
            0,
        )? as usize;
        let max_attribute_length = int(
            self.max_attribute_length,
            "max_attribute_length",
            "FERROTRACE_MAX_ATTRIBUTE_LENGTH",
            d.limits.max_attribute_length as u64,
            1,
        )? as usize;
        let max_recent_traces = int(
            self.max_recent_traces,
            "max_recent_traces",
            "FERROTRACE_MAX_RECENT_TRACES",
            d.live.max_recent_traces as u64,
            0,
        )? as usize;
        let max_events = int(
            self.max_events,
            "max_events",
            "FERROTRACE_MAX_EVENTS",
            d.limits.max_events as u64,
            0,
        )? as usize;
        let flush_interval_ms = resolve_number(
            self.flush_interval_ms,
            "flush_interval_ms",
            "FERROTRACE_FLUSH_INTERVAL_MS",
            d.flush_interval_ms as f64,
            1.0,
            env,
            &mut warnings,
        )? as u64;
        let max_file_mb = resolve_number(
            self.max_file_size_mb,
            "max_file_size_mb",
            "FERROTRACE_MAX_FILE_SIZE_MB",
            DEFAULT_MAX_FILE_MB as f64,
            0.001,
            env,
            &mut warnings,
        )?;
        let (otel_rate, otel_parent_based) = otel_sampler(env, &mut warnings);
        let sample_rate = resolve_number(
            self.sample_rate,
            "sample_rate",
            "FERROTRACE_SAMPLE_RATE",
            otel_rate.unwrap_or(1.0),
            0.0,
            env,
            &mut warnings,
        )?;
        if sample_rate > 1.0 {
            if self.sample_rate.is_some() {
                return Err(ConfigError(format!(
                    "sample_rate must be between 0.0 and 1.0, got {sample_rate}"
                )));
            }
            warnings.push(format!(
                "FERROTRACE_SAMPLE_RATE={sample_rate} is above 1.0; using 1.0"
            ));
        }
        let max_traces_per_second = resolve_optional_number(
            self.max_traces_per_second,
            "max_traces_per_second",
            "FERROTRACE_MAX_TRACES_PER_SECOND",
            env,
            &mut warnings,
        )?;
        let keep_slower_than_ms = resolve_optional_number(
            self.keep_slower_than_ms,
            "keep_slower_than_ms",
            "FERROTRACE_KEEP_SLOWER_THAN_MS",
            env,
            &mut warnings,
        )?;
        let keep_errors = match self.keep_errors {
            Some(b) => b,
            None => env_bool(env, "FERROTRACE_KEEP_ERRORS", &mut warnings).unwrap_or(false),
        };
        let parent_based = self.parent_based.or(otel_parent_based).unwrap_or(true);
        Ok((
            Config {
                service_name,
                output_dir,
                buffer_size,
                flush_interval_ms,
                sample_rate: sample_rate.min(1.0),
                max_traces_per_second,
                parent_based,
                tail: TailRules {
                    keep_errors,
                    keep_slower_than_ms,
                },
                limits: Limits {
                    max_attributes,
                    max_attribute_length,
                    max_events,
                },
                max_file_bytes: (max_file_mb * 1024.0 * 1024.0) as u64,
                live: LiveLimits {
                    max_recent_traces,
                    ..d.live
                },
            },
            warnings,
        ))
    }
}

/// An optional number >= 0: the keyword, else the environment, else None.
fn resolve_optional_number(
    given: Option<f64>,
    name: &str,
    env_key: &str,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<Option<f64>, ConfigError> {
    if let Some(v) = given {
        if !v.is_finite() || v < 0.0 {
            return Err(ConfigError(format!(
                "{name} must be a number >= 0, got {v}"
            )));
        }
        return Ok(Some(v));
    }
    match env.var(env_key) {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => {
                warnings.push(format!(
                    "ignoring {env_key}={raw:?}: expected a number >= 0"
                ));
                Ok(None)
            }
        },
    }
}

fn env_bool(env: &dyn Env, key: &str, warnings: &mut Vec<String>) -> Option<bool> {
    let raw = env.var(key)?;
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => {
            warnings.push(format!("ignoring {key}={raw:?}: expected true or false"));
            None
        }
    }
}

/// OTEL_TRACES_SAMPLER (+ OTEL_TRACES_SAMPLER_ARG) as (rate, parent_based).
fn otel_sampler(env: &dyn Env, warnings: &mut Vec<String>) -> (Option<f64>, Option<bool>) {
    let Some(name) = env.var("OTEL_TRACES_SAMPLER") else {
        return (None, None);
    };
    let arg = || {
        env.var("OTEL_TRACES_SAMPLER_ARG")
            .and_then(|a| a.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(1.0)
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "always_on" => (Some(1.0), Some(false)),
        "always_off" => (Some(0.0), Some(false)),
        "traceidratio" => (Some(arg()), Some(false)),
        "parentbased_always_on" => (Some(1.0), Some(true)),
        "parentbased_always_off" => (Some(0.0), Some(true)),
        "parentbased_traceidratio" => (Some(arg()), Some(true)),
        other => {
            warnings.push(format!(
                "ignoring OTEL_TRACES_SAMPLER={other:?}: ferrotrace supports always_on, \
                 always_off, traceidratio and their parentbased_ forms"
            ));
            (None, None)
        }
    }
}

fn resolve_number(
    given: Option<f64>,
    name: &str,
    env_key: &str,
    default: f64,
    min: f64,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<f64, ConfigError> {
    if let Some(v) = given {
        if !v.is_finite() || v < min {
            return Err(ConfigError(format!(
                "{name} must be a number >= {min}, got {v}"
            )));
        }
        return Ok(v);
    }
    if let Some(raw) = env.var(env_key) {
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= min => return Ok(v),
            _ => warnings.push(format!(
                "ignoring {env_key}={raw:?}: expected a number >= {min}; using {default}"
            )),
        }
    }
    Ok(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|v| v.to_string())
        }
    }

    #[test]
    fn keyword_beats_env_beats_default() {
        let env = MapEnv(HashMap::from([
            ("OTEL_SERVICE_NAME", "otel-name"),
            ("FERROTRACE_BUFFER_SIZE", "128"),
        ]));
        let (cfg, warnings) = ConfigOverrides::default().resolve(&env).unwrap();
        assert_eq!(cfg.service_name, "otel-name");
        assert_eq!(cfg.buffer_size, 128);
        assert!(warnings.is_empty());
        let given = ConfigOverrides {
            service_name: Some("kw".into()),
            buffer_size: Some(7),
            ..Default::default()
        };
        let (cfg, _) = given.resolve(&env).unwrap();
        assert_eq!(cfg.service_name, "kw");
        assert_eq!(cfg.buffer_size, 7);
    }

    #[test]
    fn bad_env_warns_bad_keyword_errors() {
        let env = MapEnv(HashMap::from([("FERROTRACE_BUFFER_SIZE", "lots")]));
        let (cfg, warnings) = ConfigOverrides::default().resolve(&env).unwrap();
        assert_eq!(cfg.buffer_size, DEFAULT_BUFFER_SIZE);
        assert_eq!(warnings.len(), 1);
        let bad = ConfigOverrides {
            buffer_size: Some(0),
            ..Default::default()
        };
        assert!(bad.resolve(&env).is_err());
        let bad_rate = ConfigOverrides {
            sample_rate: Some(1.5),
            ..Default::default()
        };
        assert!(bad_rate.resolve(&env).is_err());
    }

    #[test]
    fn sampling_options_from_keywords_and_env() {
        let env = MapEnv(HashMap::from([
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("FERROTRACE_KEEP_ERRORS", "yes"),
            ("FERROTRACE_KEEP_SLOWER_THAN_MS", "250"),
            ("FERROTRACE_MAX_TRACES_PER_SECOND", "lots"),
        ]));
        let (cfg, warnings) = ConfigOverrides::default().resolve(&env).unwrap();
        assert_eq!(cfg.sample_rate, 0.25);
        assert!(!cfg.parent_based);
        assert!(cfg.tail.keep_errors);
        assert_eq!(cfg.tail.keep_slower_than_ms, Some(250.0));
        assert_eq!(cfg.max_traces_per_second, None);
        assert_eq!(warnings.len(), 1);
        let given = ConfigOverrides {
            sample_rate: Some(0.5),
            parent_based: Some(true),
            max_traces_per_second: Some(100.0),
            keep_errors: Some(false),
            ..Default::default()
        };
        let (cfg, _) = given.resolve(&env).unwrap();
        assert_eq!(cfg.sample_rate, 0.5);
        assert!(cfg.parent_based);
        assert_eq!(cfg.max_traces_per_second, Some(100.0));
        assert!(!cfg.tail.keep_errors);
        let bad = ConfigOverrides {
            keep_slower_than_ms: Some(-1.0),
            ..Default::default()
        };
        assert!(bad.resolve(&env).is_err());
    }

    #[test]
    fn output_dir_can_be_disabled_from_env() {
        let env = MapEnv(HashMap::from([("FERROTRACE_OUTPUT_DIR", "none")]));
        let (cfg, _) = ConfigOverrides::default().resolve(&env).unwrap();
        assert_eq!(cfg.output_dir, None);
    }
}
