//! One place where SDK configuration is made: region, credentials, and the endpoint override
//! that points every client at a local emulator in tests.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The environment variable that points every client at one endpoint (tests: moto's server).
pub const ENDPOINT_VARIABLE: &str = "BATON_AWS_ENDPOINT";

/// Loads the SDK configuration once per cold start: default credential chain and region,
/// `region` when given, and the endpoint of [`ENDPOINT_VARIABLE`] when set.
pub async fn load(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    if let Ok(endpoint) = std::env::var(ENDPOINT_VARIABLE) {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Like [`load`], with an explicit endpoint (a local emulator, or AWS itself when `None`).
pub async fn load_with(region: Option<&str>, endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// An S3 client for `config`; path-style addressing when an endpoint override is in force,
/// since emulators do not serve virtual-hosted buckets.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let path_style = config.endpoint_url().is_some();
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(conf)
}
