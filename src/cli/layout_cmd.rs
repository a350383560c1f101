//! The layout options of `tessera raw composite` (layout by name or file, changes over time,
//! names and pins), and `tessera layout preview`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tessera::layout::Layout;
use tessera::render::preview::{PreviewSpec, preview};
use tessera::render::staging::{ParticipantInfo, Staging};

use super::parse_size;

/// How the composite is laid out.
#[derive(Args, Debug, Clone)]
pub struct StagingArgs {
    /// Layout: a built-in name (grid, speaker, spotlight, screenshare, pip, audio-only, auto)
    /// or a layout file (.toml).
    #[arg(long, default_value = "grid")]
    layout: String,
    /// From call time MS on, use this layout instead (repeatable): `--layout-at 60000:speaker`.
    #[arg(long = "layout-at", value_name = "MS:LAYOUT")]
    layout_at: Vec<String>,
    /// The name shown on a participant's tile (repeatable): `--name alice="Alice Liddell"`.
    #[arg(long = "name", value_name = "ID=NAME")]
    names: Vec<String>,
    /// Pin a participant (repeatable): the spotlight layout shows the pinned.
    #[arg(long = "pin", value_name = "ID")]
    pins: Vec<String>,
}

impl StagingArgs {
    /// The staging these options ask for.
    pub fn staging(&self) -> anyhow::Result<Staging> {
        let mut layouts = vec![(0, Layout::load(&self.layout)?)];
        for change in &self.layout_at {
            let (at, name) = change
                .split_once(':')
                .with_context(|| format!("--layout-at `{change}`: expected MS:LAYOUT, e.g. 60000:speaker"))?;
            let at_ms: u64 =
                at.trim().parse().with_context(|| format!("--layout-at `{change}`: `{at}` is not a number of ms"))?;
            let layout = Layout::load(name.trim())?;
            match layouts.iter_mut().find(|(at, _)| *at == at_ms) {
                Some(entry) if at_ms == 0 => entry.1 = layout,
                Some(_) => anyhow::bail!("--layout-at: {at_ms} ms is given twice"),
                None => layouts.push((at_ms, layout)),
            }
        }
        layouts.sort_by_key(|(at_ms, _)| *at_ms);
        let mut participants: Vec<ParticipantInfo> = Vec::new();
        for given in &self.names {
            let (id, name) = given.split_once('=').with_context(|| format!("--name `{given}`: expected ID=NAME"))?;
            participants.push(ParticipantInfo { id: id.to_owned(), name: name.to_owned(), ..Default::default() });
        }
        for id in &self.pins {
            match participants.iter_mut().find(|p| &p.id == id) {
                Some(p) => p.pinned = true,
                None => participants.push(ParticipantInfo { id: id.clone(), pinned: true, ..Default::default() }),
            }
        }
        Ok(Staging { layouts, participants, ..Staging::default() })
    }
}

#[derive(Subcommand)]
pub enum LayoutCommand {
    /// Draw a layout with sample tiles, names and a speaker to a PNG file.
    Preview(PreviewArgs),
}

#[derive(Args)]
pub struct PreviewArgs {
    /// A built-in layout name or a layout file (.toml).
    #[arg(long)]
    layout: String,
    /// Participants with a camera.
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// One of them shares a screen.
    #[arg(long)]
    screenshare: bool,
    /// Canvas size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    size: (u32, u32),
    /// Where to write the PNG.
    #[arg(long)]
    out: PathBuf,
}

pub fn run_layout(command: LayoutCommand) -> anyhow::Result<()> {
    match command {
        LayoutCommand::Preview(args) => {
            if !(1..=49).contains(&args.participants) {
                anyhow::bail!("--participants {}: give 1 to 49", args.participants);
            }
            let spec = PreviewSpec {
                layout: Layout::load(&args.layout)?,
                participants: args.participants,
                screenshare: args.screenshare,
                width: args.size.0,
                height: args.size.1,
                compositor: None,
            };
            let image = preview(&spec)?;
            image.write_png(&args.out)?;
            println!("{}x{} preview of `{}` -> {}", image.width, image.height, spec.layout.name, args.out.display());
            Ok(())
        }
    }
}
