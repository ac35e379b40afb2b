"""Evaluation: ZoeDepth's metrics reproduced exactly (`metrics`), the evaluation loop and report
(`evaluate`) and the `depth-estimation evaluate` command (`command`). numpy + OpenCV only; the
model runs through `depth_estimation.inference` backends."""
