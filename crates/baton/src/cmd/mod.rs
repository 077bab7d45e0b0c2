//! One module per subcommand.

pub mod completions;
pub mod convert;
pub mod doctor;
pub mod export;
pub mod fork;
pub mod import;
pub mod index;
pub mod list;
pub mod login;
pub mod pick;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rehydrate;
pub mod resume;
pub mod run;
pub mod search;
pub mod secrets;
pub mod serve;
pub mod show;
pub mod status;
pub mod sync;
pub mod watch;
