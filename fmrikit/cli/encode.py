"""``fmrikit encode`` and ``fmrikit cluster-embeddings`` (the universal encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli._common import call, int_list, out_console

ForwardBatch = Annotated[int, typer.Option(min=1, help="Images per forward pass.")]


def encode(
    images: Annotated[Optional[Path], typer.Argument(help="An image file or a folder of images.",
                                                     show_default=False)] = None,
    subject: Annotated[int, typer.Option(min=1, help="Subject whose responses are predicted.")] = ...,
    shared: Annotated[bool, typer.Option("--shared", help="Predict the subject's test images (the dataset's "
                                                          "shared stimuli) instead.")] = False,
    model: Annotated[Optional[Path], typer.Option(help="Encoder folder [default: <root>/models/encoder if it holds "
                                                       "the subject, else <root>/sub-NN/sub-NN_desc-adapt_encoder]."
                                                  )] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: <root>/sub-NN/sub-NN_encode-<name>]."
                                                )] = None,
    batch_size: ForwardBatch = 32,
    max_flatmaps: Annotated[int, typer.Option(min=0, help="Pictures (pycortex flatmaps, else nilearn mosaics) for the "
                                                          "first this many images.")] = 16,
    device: o.Device = "auto",
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Predicted responses to images: a 4D NIfTI, an HDF5 of the values and pictures."""
    from fmrikit.methods.encoder.predict import encode_images

    result = call(encode_images, images, subject, model=model, shared=shared, root=root, out=out,
                  batch_size=batch_size, max_flatmaps=max_flatmaps, device=device, overwrite=overwrite)
    out_console.print(f"predicted responses to {result.n_images} images: {result.out}")


def cluster_embeddings(
    k: Annotated[int, typer.Option("--k", min=2, help="Number of clusters.")] = 20,
    subjects: Annotated[Optional[str], typer.Option(help="Subjects clustered together, e.g. 1,2 [default: all of "
                                                         "the encoder's].")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Encoder folder [default: <root>/models/encoder].")] = None,
    method: Annotated[str, typer.Option(help="kmeans, or gmm (Gaussian mixture, as the paper's public code).")]
    = "kmeans",
    space: Annotated[str, typer.Option(help="response: each voxel's predicted response profile over the candidate "
                                            "images; embedding: the L2-normalised embeddings (the paper's).")]
    = "response",
    images: Annotated[Optional[Path], typer.Option(help="Folder of candidate images for each cluster's montage "
                                                        "[default: the subjects' stimuli].")] = None,
    max_images: Annotated[int, typer.Option(min=1, help="Most candidate images scored (a random subset when more).")]
    = 1000,
    top: Annotated[int, typer.Option(min=1, help="Images per cluster montage.")] = 8,
    seed: o.Seed = 0,
    flatmap: Annotated[bool, typer.Option(help="Draw a picture of the labels per subject (pycortex flatmap, else "
                                               "nilearn mosaic).")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: <root>/clusters/<method>-k<k>].")]
    = None,
    batch_size: ForwardBatch = 32,
    device: o.Device = "auto",
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Cluster voxel embeddings of several subjects into one functional map; each cluster's top images."""
    from fmrikit.methods.encoder.clusters import cluster_embeddings as run

    result = call(run, k, subjects=int_list(subjects, "--subjects"), model=model, method=method, space=space,
                  images=images,
                  max_images=max_images, top=top, root=root, out=out, seed=seed, flatmap=flatmap,
                  batch_size=batch_size, device=device, overwrite=overwrite)
    out_console.print(f"{k} clusters over {', '.join(result.labels)}: {result.out}")
