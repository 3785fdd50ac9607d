"""Defences against ADV² and the attacks that beat them (spec §9 "Detection" and "Countermeasures").

* ``squeeze``: feature squeezing (Xu et al. 2018), detection by prediction change under squeezers.
* ``lid``: local intrinsic dimensionality (Ma et al. 2018) of hidden activations + logistic regression.
* ``ensemble``: ensemble interpretation, its inconsistency detector and the adaptive ADV² [our decision].
* ``aid``: adversarial interpretation distillation for RTS [our decision].

Each experiment reads a run directory of ``doublecross attack`` (``rundata``), stores its results
resumably in ``defences.sqlite`` (``store``) and renders Markdown/HTML (``report``).
"""
