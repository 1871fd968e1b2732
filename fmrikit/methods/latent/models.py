"""Networks mapping one subject's betas to a flattened Stable Diffusion target.

The target is either the VAE latent of the stimulus image (``4 * h * w`` values) or its CLIP
text-condition embeddings (``15 * 768`` values). One class, :class:`LatentMapper`, holds the five
architectures compared in the report (sections 2.4-2.5):

- ``"ridge"``: one linear layer (its weights come from a himalaya fit);
- ``"cnn"``: fMRI-to-image CNN, Conv1d + 2 residual blocks (kernel 11) + 3 fully connected layers;
- ``"text-cnn"``: fMRI-to-text CNN, Conv1d + 3 residual blocks (kernel 7) + 3 fully connected layers;
- ``"vae"``: an fMRI encoder to a Gaussian latent, a residual decoder to the target and a linear
  fMRI reconstruction head used in the loss;
- ``"gcn"``: ROIs as graph nodes, two Chebyshev graph convolutions, mean pooling, a small residual
  Conv1d stack and 2 fully connected layers. The graph is the symmetric thresholded functional
  connectivity of the nodes and the Laplacian is scaled by its computed largest eigenvalue (the
  report's formula; its upper-triangular graph and torch_geometric's assumed eigenvalue 2 are not kept,
  see :func:`connectivity_graph`).

Every network predicts the standardised target ``(y - target_mean) / target_std``; the statistics
are buffers saved with the weights, and :meth:`LatentMapper.predict` returns raw units.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fmrikit.errors import DataValueError, InputError
from fmrikit.engine.serialization import PretrainedModule
from fmrikit.checks import check_option

ARCHITECTURES = ("ridge", "cnn", "text-cnn", "vae", "gcn")


def scaled_laplacian(adjacency: torch.Tensor, lambda_max: float | None = None) -> torch.Tensor:
    """Scaled normalised Laplacian ``2 L / lambda_max - I`` with ``L = I - D^-1/2 A D^-1/2`` (Defferrard et al. 2016).

    Parameters
    ----------
    adjacency : Tensor, shape (N, N)
        Symmetric edge weights ``A``; the degree is ``D_ii = sum_j A_ij``.
    lambda_max : float, optional
        Largest eigenvalue of ``L``; default computed (``torch.linalg.eigvalsh``), as the report's
        ``L~ = 2 L / lambda_max - I`` asks, instead of torch_geometric's assumed 2, so the spectrum of
        ``L~`` spans exactly [-1, 1] where the Chebyshev polynomials are bounded.

    Returns
    -------
    Tensor, shape (N, N)
        ``L~``; rows and columns of zero-degree nodes get ``D^-1/2 = 0`` (``L_ii = 1``).

    Raises
    ------
    InputError
        ``adjacency`` is not a symmetric square matrix.
    """
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1] or not torch.equal(adjacency, adjacency.T):
        raise InputError("the graph's adjacency must be a symmetric square matrix", expected="A == A.T",
                         found=f"shape {tuple(adjacency.shape)}" + (", asymmetric" if adjacency.ndim == 2 else ""))
    degree = adjacency.sum(dim=1)
    inv_sqrt = torch.where(degree > 0, degree.clamp_min(torch.finfo(adjacency.dtype).tiny).rsqrt(),
                           torch.zeros_like(degree))
    eye = torch.eye(adjacency.shape[0], dtype=adjacency.dtype, device=adjacency.device)
    laplacian = eye - inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]
    if lambda_max is None:  # L is symmetric positive semi-definite with trace N: lambda_max >= 1
        lambda_max = float(torch.linalg.eigvalsh(laplacian.double()).max())
    return 2.0 * laplacian / lambda_max - eye


def connectivity_graph(node_activity: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Functional-connectivity graph between ROI nodes (report 2.5.3), undirected.

    The report keeps only ``M_ij`` for ``i < j`` ("unidirectional"); with the degree taken over rows
    that leaves the last node with degree 0, cut off from every convolution, and makes ``L`` asymmetric,
    so its spectrum is no longer the real one the Chebyshev filters assume. The graph here is the
    symmetric thresholded correlation matrix.

    Parameters
    ----------
    node_activity : ndarray, shape (n_trials, N)
        Each node's voxel-mean activity per trial.
    threshold : float
        Correlations below it are set to 0; the others are kept as edge weights.

    Returns
    -------
    ndarray of float32, shape (N, N)
        Symmetric Pearson correlations ``M``, thresholded, with a zero diagonal.

    Raises
    ------
    DataValueError
        Not 2-D, fewer than 2 trials, or a node whose activity is constant.
    """
    node_activity = np.asarray(node_activity, dtype=np.float64)
    if node_activity.ndim != 2 or node_activity.shape[0] < 2:
        raise DataValueError("node activity must be a (n_trials, n_nodes) array", expected="at least 2 trials",
                             found=f"shape {node_activity.shape}")
    flat = np.flatnonzero(node_activity.std(axis=0) == 0)
    if flat.size:
        raise DataValueError("node activity is constant over trials", expected="varying activity",
                             found=f"constant node(s) {flat.tolist()}")
    corr = np.corrcoef(node_activity, rowvar=False)
    corr = (corr + corr.T) / 2  # exactly symmetric
    corr[corr < threshold] = 0.0
    np.fill_diagonal(corr, 0.0)
    return corr.astype(np.float32)


def node_columns_from_labels(labels: np.ndarray, groups: list[list[int]]) -> list[list[int]]:
    """Input columns of each graph node, from the atlas labels of the columns.

    Parameters
    ----------
    labels : ndarray of int, shape (V,)
        Atlas label of each input column.
    groups : list of list of int
        Labels merged into each node, e.g. ``[[1, 2], [3, 4], [5, 6, 7]]`` for V1 / V2 / V3+hV4
        of NSD ``prf-visualrois``.

    Returns
    -------
    list of list of int
        For each group, the (sorted) column indices whose label is in the group.

    Raises
    ------
    DataValueError
        ``labels`` is not 1-D, or a group matches no column.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataValueError("labels must be one value per input column", expected="1-D",
                             found=f"shape {labels.shape}")
    columns = [np.flatnonzero(np.isin(labels, group)).tolist() for group in groups]
    empty = [list(g) for g, c in zip(groups, columns) if not c]
    if empty:
        raise DataValueError("graph node without input columns", expected="every label group present",
                             found=f"no column labelled {empty}")
    return columns


class ChebConv(nn.Module):
    """Dense Chebyshev graph convolution ``sum_k T_k(L~) x W_k + b`` for k = 0..K-1.

    Parameters
    ----------
    in_channels, out_channels : int
    K : int
        Number of Chebyshev terms (filter size), at least 1.
    bias : bool
    """

    def __init__(self, in_channels: int, out_channels: int, K: int, bias: bool = True):
        super().__init__()
        if K < 1:
            raise InputError("Chebyshev filter size must be positive", expected="K >= 1", found=str(K))
        self.weight = nn.Parameter(torch.empty(K, in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        for w in self.weight:
            nn.init.xavier_uniform_(w)

    def forward(self, x: torch.Tensor, laplacian_scaled: torch.Tensor) -> torch.Tensor:
        """Convolve node features.

        Parameters
        ----------
        x : Tensor, shape (B, N, C_in)
        laplacian_scaled : Tensor, shape (N, N)
            :func:`scaled_laplacian` of the graph.

        Returns
        -------
        Tensor, shape (B, N, C_out)
        """
        t_prev, t_cur = x, x
        out = x @ self.weight[0]
        for k in range(1, self.weight.shape[0]):
            t_next = torch.einsum("nm,bmc->bnc", laplacian_scaled, t_cur)
            if k > 1:  # T_k = 2 L~ T_{k-1} - T_{k-2}
                t_next = 2.0 * t_next - t_prev
            t_prev, t_cur = t_cur, t_next
            out = out + t_cur @ self.weight[k]
        return out if self.bias is None else out + self.bias


class ConvResidualBlock(nn.Module):
    """``x + body(x)``, the body being ``n_layers`` same-width Conv1d layers each followed by ``act``."""

    def __init__(self, channels: int, kernel_size: int, n_layers: int, act: type[nn.Module]):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_layers):
            layers += [nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2), act()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvMLP(nn.Module):
    """A 1-channel sequence through Conv1d residual blocks, then fully connected layers.

    ``Conv1d(1->C, 1)``, ``n_blocks`` :class:`ConvResidualBlock`, ``Conv1d(C->1, 1)``, flatten and
    ``Linear`` layers through ``widths``; ``act`` follows every layer but the 1-channel projection
    and the last, dropout every hidden fully connected layer. (The report puts a ReLU after the
    projection too; on non-negative residual features it outputs only zeros for about one
    initialisation in four, and the network then predicts a constant.)

    Parameters
    ----------
    length : int
        Length L of the input sequence.
    widths : list of int
        Hidden fully connected widths followed by the output width.
    """

    def __init__(self, length: int, channels: int, n_blocks: int, kernel_size: int, block_layers: int,
                 widths: list[int], act: type[nn.Module], dropout: float):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(1, channels, 1), act(),
            *[ConvResidualBlock(channels, kernel_size, block_layers, act) for _ in range(n_blocks)],
            nn.Conv1d(channels, 1, 1))
        fc: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip([length, *widths[:-1]], widths)):
            fc.append(nn.Linear(n_in, n_out))
            if i < len(widths) - 1:
                fc += [act(), nn.Dropout(dropout)]
        self.fc = nn.Sequential(*fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, widths[-1])."""
        return self.fc(self.convs(x[:, None, :])[:, 0, :])


class DecoderBlock(nn.Module):
    """``skip(x) + LeakyReLU(BatchNorm1d(Linear(x)))``, the skip a bias-free projection when widths differ."""

    def __init__(self, n_in: int, n_out: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.LeakyReLU(),
                                  nn.Dropout(dropout))
        self.skip = nn.Identity() if n_in == n_out else nn.Linear(n_in, n_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class LatentMapper(PretrainedModule):
    """One subject's betas to a flattened, standardised Stable Diffusion target.

    Parameters
    ----------
    arch : {"ridge", "cnn", "text-cnn", "vae", "gcn"}
    n_voxels : int
        V, input columns.
    out_dim : int
        D, size of the flattened target (``4 * h * w`` image latents, ``15 * 768`` text embeddings).
    channels : int
        Conv1d channels of "cnn", "text-cnn" and "gcn".
    hidden : int
        Fully connected width of "cnn" and of the "vae" encoder and decoder.
    text_hidden : list of int
        The two hidden fully connected widths of "text-cnn".
    latent_dim : int
        Size of the "vae" latent.
    kl_weight : float
        Weight of the KL term in the "vae" loss.
    recon_weight : float
        Weight of the fMRI reconstruction term in the "vae" loss.
    node_columns : list of list of int, optional
        "gcn" only: the input columns of each of the N graph nodes (:func:`node_columns_from_labels`).
        Node features are these columns' values, zero-padded to the largest node.
    adjacency : list of list of float or ndarray, shape (N, N), optional
        "gcn" only: the symmetric edge weights (:func:`connectivity_graph`); kept as a buffer.
    cheb_k : list of int
        Chebyshev filter sizes of the two "gcn" graph convolutions.
    gcn_width : int
        Output width of the graph convolutions.
    gcn_hidden : int
        Hidden fully connected width of "gcn".
    dropout : float
        Dropout after every hidden fully connected layer ("cnn", "text-cnn", "gcn") or decoder block ("vae").

    Attributes
    ----------
    ijk : Tensor of int32, shape (V, 3)
        Source-grid indices of the input voxels, in column order (filled by the caller).
    target_mean, target_std : Tensor of float32, shape (D,)
        Statistics that standardise the target (:meth:`set_target_statistics`).
    """

    def __init__(self, arch: str, n_voxels: int, out_dim: int, channels: int = 16, hidden: int = 512,
                 text_hidden: list[int] | tuple[int, int] = (1024, 2048), latent_dim: int = 256,
                 kl_weight: float = 1e-3, recon_weight: float = 1.0,
                 node_columns: list[list[int]] | None = None, adjacency: list[list[float]] | None = None,
                 cheb_k: list[int] | tuple[int, int] = (4, 3), gcn_width: int = 512, gcn_hidden: int = 1024,
                 dropout: float = 0.0):
        check_option("latent mapper architecture", arch, ARCHITECTURES)
        if node_columns is not None:  # plain ints and floats for config.json (numpy input allowed)
            node_columns = [[int(c) for c in cols] for cols in node_columns]
        if adjacency is not None:
            adjacency = np.asarray(adjacency, dtype=np.float64).tolist()
        super().__init__(arch=arch, n_voxels=n_voxels, out_dim=out_dim, channels=channels, hidden=hidden,
                         text_hidden=list(text_hidden), latent_dim=latent_dim, kl_weight=kl_weight,
                         recon_weight=recon_weight, node_columns=node_columns, adjacency=adjacency,
                         cheb_k=list(cheb_k), gcn_width=gcn_width, gcn_hidden=gcn_hidden, dropout=dropout)
        self.arch = arch
        self.register_buffer("ijk", torch.zeros(n_voxels, 3, dtype=torch.int32))
        self.register_buffer("target_mean", torch.zeros(out_dim))
        self.register_buffer("target_std", torch.ones(out_dim))
        if arch == "ridge":
            self.linear = nn.Linear(n_voxels, out_dim)
        elif arch == "cnn":
            self.net = ConvMLP(n_voxels, channels, n_blocks=2, kernel_size=11, block_layers=2,
                               widths=[hidden, hidden, out_dim], act=nn.ReLU, dropout=dropout)
        elif arch == "text-cnn":
            self.net = ConvMLP(n_voxels, channels, n_blocks=3, kernel_size=7, block_layers=3,
                               widths=[*text_hidden, out_dim], act=nn.ReLU, dropout=dropout)
        elif arch == "vae":
            self.encoder = nn.Sequential(nn.Linear(n_voxels, hidden), nn.LeakyReLU(),
                                         nn.Linear(hidden, 2 * latent_dim))
            self.decoder = nn.Sequential(DecoderBlock(latent_dim, hidden, dropout),
                                         DecoderBlock(hidden, hidden, dropout),
                                         DecoderBlock(hidden, hidden, dropout), nn.Linear(hidden, out_dim))
            self.reconstruction = nn.Linear(latent_dim, n_voxels)
        else:
            self._build_gcn(node_columns, adjacency)

    def _build_gcn(self, node_columns: list[list[int]] | None, adjacency: list[list[float]] | None) -> None:
        c = self.config
        if not node_columns or adjacency is None:
            raise InputError("the gcn mapper needs its graph", expected="node_columns and adjacency",
                             found="node_columns" if node_columns else "no node_columns")
        n_nodes, n_voxels = len(node_columns), c["n_voxels"]
        adj = torch.tensor(adjacency, dtype=torch.float32)
        if adj.shape != (n_nodes, n_nodes):
            raise InputError("adjacency does not fit the graph nodes", expected=f"shape ({n_nodes}, {n_nodes})",
                             found=f"shape {tuple(adj.shape)}")
        if any(not cols or min(cols) < 0 or max(cols) >= n_voxels for cols in node_columns):
            raise InputError("node columns must be non-empty and index the input",
                             expected=f"indices in [0, {n_voxels})", found=str([len(cols) for cols in node_columns]))
        k = max(len(cols) for cols in node_columns)
        # column n_voxels of the zero-extended input is the padding
        index = torch.full((n_nodes, k), n_voxels, dtype=torch.long)
        for i, cols in enumerate(node_columns):
            index[i, :len(cols)] = torch.tensor(cols)
        self.register_buffer("node_index", index, persistent=False)
        self.register_buffer("adjacency", adj)
        # computed on the CPU (also when the model is built on the meta device for a memory plan)
        lap = scaled_laplacian(torch.tensor(adjacency, dtype=torch.float64, device="cpu")).float()
        self.register_buffer("laplacian", lap.to(adj.device), persistent=False)
        k1, k2 = c["cheb_k"]
        width = c["gcn_width"]
        self.cheb1 = ChebConv(k, width, k1)
        self.cheb_norm = nn.BatchNorm1d(width)
        self.cheb2 = ChebConv(width, width, k2)
        self.net = ConvMLP(width, c["channels"], n_blocks=2, kernel_size=3, block_layers=1,
                           widths=[c["gcn_hidden"], c["out_dim"]], act=nn.LeakyReLU, dropout=c["dropout"])

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.config["n_voxels"]:
            raise DataValueError("betas do not fit the mapper", expected=f"(B, {self.config['n_voxels']})",
                                 found=f"shape {tuple(x.shape)}")

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """VAE posterior mean and log-variance (B, latent_dim), and the latent used (sampled in train mode)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
        return mean, logvar, z

    def _graph(self, x: torch.Tensor) -> torch.Tensor:
        """GCN trunk: (B, V) -> pooled graph features (B, gcn_width)."""
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
        nodes = padded[:, self.node_index]  # (B, N, k)
        h = self.cheb1(nodes, self.laplacian)
        h = F.relu(self.cheb_norm(h.transpose(1, 2)).transpose(1, 2))
        return self.cheb2(h, self.laplacian).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict the standardised target.

        Parameters
        ----------
        x : Tensor, shape (B, V)
            Z-scored betas.

        Returns
        -------
        Tensor, shape (B, D)
            For "vae", the decoded posterior mean in eval mode and a reparameterised sample in train mode.
        """
        self._check(x)
        if self.arch == "ridge":
            return self.linear(x)
        if self.arch == "vae":
            return self.decoder(self._encode(x)[2])
        if self.arch == "gcn":
            return self.net(self._graph(x))
        return self.net(x)

    def training_loss(self, x: torch.Tensor, y_std: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Training objective for a batch.

        MSE to the standardised target; for "vae" plus ``recon_weight`` times the MSE of the fMRI
        reconstruction and ``kl_weight`` times the KL divergence to N(0, I) (averaged over batch and
        latent dimensions).

        Parameters
        ----------
        x : Tensor, shape (B, V)
        y_std : Tensor, shape (B, D)
            Standardised target (:meth:`standardize`).

        Returns
        -------
        loss : Tensor, scalar
        parts : dict of str to float
            ``"mse"``, and for "vae" also ``"recon"`` and ``"kl"``.
        """
        if self.arch != "vae":
            loss = F.mse_loss(self(x), y_std)
            return loss, {"mse": loss.item()}
        self._check(x)
        mean, logvar, z = self._encode(x)
        mse = F.mse_loss(self.decoder(z), y_std)
        recon = F.mse_loss(self.reconstruction(z), x)
        kl = -0.5 * torch.mean(1 + logvar - mean.square() - logvar.exp())
        loss = mse + self.config["recon_weight"] * recon + self.config["kl_weight"] * kl
        return loss, {"mse": mse.item(), "recon": recon.item(), "kl": kl.item()}

    def standardize(self, y: torch.Tensor) -> torch.Tensor:
        """Targets in raw units, shape (N, D), into the standardised space the network predicts."""
        return (y - self.target_mean) / self.target_std

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predict the target in raw units, in eval mode and without gradients.

        Parameters
        ----------
        x : Tensor, shape (B, V)

        Returns
        -------
        Tensor, shape (B, D)
            ``forward(x) * target_std + target_mean``. The module's train/eval mode is restored.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self(x) * self.target_std + self.target_mean
        finally:
            self.train(was_training)

    def set_target_statistics(self, y: torch.Tensor, eps: float = 1e-6) -> None:
        """Set ``target_mean`` and ``target_std`` from training targets.

        Parameters
        ----------
        y : Tensor, shape (N, D)
            Raw targets, N >= 2.
        eps : float
            Floor of the standard deviation (constant dimensions).
        """
        if y.ndim != 2 or y.shape[1] != self.config["out_dim"] or y.shape[0] < 2:
            raise DataValueError("targets do not fit the mapper", expected=f"(N >= 2, {self.config['out_dim']})",
                                 found=f"shape {tuple(y.shape)}")
        y = y.detach().to(self.target_mean)
        self.target_mean.copy_(y.mean(dim=0))
        self.target_std.copy_(y.std(dim=0).clamp_min(eps))
