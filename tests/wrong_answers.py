"""A plausible wrong answer for every exercise in solutions/, which its check must reject.

``WRONG_ANSWERS[notebook][cell id]`` replaces the solution block of that answer cell (a list
replaces the cell's blocks in order), written without the block's indentation. Each is a
mistake a student could make: right shape, wrong idea. tests/test_exercises.py runs every
solution notebook with all of its wrong answers at once and expects every check to fail.
"""

WRONG_ANSWERS = {
    "00_setup_and_data.ipynb": {
        # shares of all images, not of the split's images
        "c06": """counts = found.counts()
everything = sum(sum(split.values()) for split in counts.values())
train_share = {name: counts["Training"][name] / everything for name in data.CLASS_NAMES}
test_share = {name: counts["Testing"][name] / everything for name in data.CLASS_NAMES}""",
        # the same overall average for every class
        "c09": """gray = train.images[..., 0].astype(np.float32)
mean_images = np.stack([gray.mean(axis=0) for k in range(len(data.CLASS_NAMES))])""",
        # the files of both splits
        "c13": """is_square = {name: [] for name in data.CLASS_NAMES}
for f in found.files:
    with Image.open(f.path) as im:
        is_square[f.class_name].append(im.width == im.height)
square_share = pd.Series({name: float(np.mean(flags)) for name, flags in is_square.items()})""",
    },
    "01_cnn_basics.ipynb": {
        "c06": "return (n + padding - kernel_size) // stride + 1",  # padding on one side only
        "c09": """blocks = x.reshape(x.shape[0] // size, size, x.shape[1] // size, size)  # assumes size divides the sides
return blocks.max(axis=(1, 3))""",
        "c12": """exp = np.exp(np.asarray(logits, dtype=np.float64))  # overflows for large logits
return exp / exp.sum()""",
        "c15": ["return inputs * units",  # no bias
                "return kernel_size * kernel_size * in_channels * out_channels",
                """paper_trainable = {"conv5_block3_3_conv": conv_params(1, 512, 2048), "conv5_block3_3_bn": 4 * 2048,
                   "dense": dense_params(4 * 4 * 2048, 128), "predictions": dense_params(128, 4)}"""],
    },
    "02_how_a_network_learns.ipynb": {
        "c06": """logits = np.asarray(logits, dtype=np.float64)  # the textbook formula: overflows
p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
return float(np.mean(-np.log(p[np.arange(len(logits)), labels])))""",
        "c09": """p = 1 / (1 + np.exp(-(w * x + b)))
return np.array([np.mean((p - y) * x), np.mean((p - y) * x)])""",
        "c12": ["return n_images // batch_size  # drops the last, smaller batch", "total_steps = course.FIRST_CNN_EPOCHS * steps_per_epoch(N_TRAINING, course.FIRST_CNN_BATCH_SIZE)  # validation images too"],
        "c15": """X = np.stack([x, np.ones_like(x)], axis=1)
hessian = 2 / len(x) * X.T @ X
largest_stable_lr = 2 / np.linalg.eigvalsh(hessian).min()  # the flat direction instead of the steep one""",
    },
    "03_first_cnn.ipynb": {
        "c06": ["return float(np.mean(np.asarray(test_labels) == np.bincount(test_labels).argmax()))  # peeks at the test labels",
                "baseline_accuracy = majority_baseline(splits.train.labels, splits.test.labels)"],
        "c10": """values = np.asarray(history[monitor], dtype=float)
return int(np.asarray(history["epoch"])[np.nanargmin(values)])  # the lowest, even for an accuracy""",
        "c13": """matrix = evaluate.confusion(predictions)
found = np.diag(matrix.to_numpy())
return pd.Series(found / np.maximum(matrix.sum(axis=0).to_numpy(), 1), index=matrix.index)  # column totals: precision""",
    },
    "04_residual_blocks.ipynb": {
        "c06": """def conv(k, c, f):
    return (k * k * c + 1) * f

total = conv(3, in_channels, filters) + conv(3, filters, filters)  # batch normalisation forgotten
if stride != 1 or in_channels != filters:
    total += conv(1, in_channels, filters)
return total""",
        "c09": """for stage, filters in enumerate((64, 128, 256, 512), start=2):
    for block in (1, 2):
        x = models.residual_block(x, filters, stride=2 if block == 1 else 1, name=f"conv{stage}_block{block}")
return x""",
        "c12": """vanishing = pd.DataFrame(index=list(DEPTHS), columns=["plain", "residual"], dtype=float)
for depth in DEPTHS:
    for name, shortcuts in [("plain", False), ("residual", True)]:
        config.set_seed(0)
        norms = train.gradient_norms(models.deep_stack(depth, shortcuts), batch.images, batch.labels)
        vanishing.loc[depth, name] = norms[f"block{depth}_2_conv"] / norms["stem_conv"]  # upside down""",
    },
    "05_transfer_learning.ipynb": {
        "c06": "return np.asarray(images, dtype=np.float32) - IMAGENET_MEAN_BGR.astype(np.float32)  # still RGB",
        "c09": """dense_after_flatten = (4 * 4 * 2048 + 1) * 128  # the 128-pixel feature map
trainable_224 = dense_after_flatten + (128 + 1) * 4 + (512 + 1) * 2048 + 2 * 2048""",
        "c13": """floats_per_image = int(np.prod(extractor.outputs[0].shape[1:]))  # the first output only
cache_mb = floats_per_image * 4 * len(splits.train) / 1e6""",
    },
    "06_reproducing_the_paper.ipynb": {
        "c06": """counts = matrix.to_numpy(dtype=float)
hits = np.diag(counts)
precision = np.divide(hits, counts.sum(axis=1), out=np.zeros_like(hits), where=counts.sum(axis=1) > 0)  # rows and
recall = np.divide(hits, counts.sum(axis=0), out=np.zeros_like(hits), where=counts.sum(axis=0) > 0)     # columns swapped
return pd.DataFrame({"precision": precision, "recall": recall}, index=matrix.index)""",
        "c09": ["""names = list(recall.keys())
mean = sum(recall[name] for name in names) / len(names)  # the supports forgotten
return mean, mean""",
                """paper_totals = report_totals({name: row["recall"] for name, row in paper.PER_CLASS.items()},
                             {name: row["support"] for name, row in paper.PER_CLASS.items()})
table = evaluate.classification_table(predictions).loc[list(predictions.class_names)]
ours_totals = report_totals(table["recall"], table["support"])"""],
        "c13": """scores, is_positive = np.asarray(scores, dtype=float), np.asarray(is_positive, dtype=bool)
positives, negatives = scores[is_positive], scores[~is_positive]
return float(np.mean(positives[:, None] > negatives[None, :]))  # ties count nothing""",
        "c16": ["""half_width = z * np.sqrt(accuracy * (1 - accuracy) / n)
return accuracy - half_width, accuracy + half_width  # not clipped""",
                "paper_interval = accuracy_interval(paper.TEST_ACCURACY, 100)"],  # one class's support, not the 394
    },
    "07_beyond_the_paper.ipynb": {
        "c06": ["return np.asarray(features).mean(axis=-1)  # over the channels, not the positions",
                """dense_after_flatten = 4 * 4 * 2048 * 128  # no bias
dense_after_pooling = 2048 * 128"""],
        "c10": """def batch_norm(x, gamma, beta, mean, variance, epsilon=1e-3):
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta


with_batch_statistics = batch_norm(x, gamma, beta, x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)))
with_moving_statistics = with_batch_statistics  # the same statistics in both modes""",
        "c14": """counts = catalogue.BRAIN_TUMOR.counts["Training"]
n = sum(counts.values())
weights = {label: n / counts[name] for label, name in enumerate(data.CLASS_NAMES)}  # k forgotten""",
        "c17": ["return NormalDist().cdf(difference / (std * math.sqrt(1 / n)) - z)  # one mean's scatter, not a difference's",
                "return max(1, math.ceil(2 * (z * std / difference) ** 2))  # the rule of thumb: 50% power"],
    },
    "08_can_we_trust_it.ipynb": {
        "c06": """leak_share = result.files.groupby("class")["cross_split"].mean().reindex(list(data.CLASS_NAMES))  # both splits""",
        "c09": """from sklearn.tree import DecisionTreeClassifier

features = ["width", "height", "aspect"]
training_files = result.files[result.files["split"] == "Training"]
testing_files = result.files[result.files["split"] == "Testing"]
size_model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(training_files[features], training_files["class"])
size_accuracy = size_model.score(training_files[features], training_files["class"])  # scored on Training
majority_accuracy = float((testing_files["class"] == testing_files["class"].value_counts().idxmax()).mean())""",
        "c13": ["""image = np.asarray(image, dtype=np.float32)
gray = (image.mean(axis=-1) if image.ndim == 3 else image).round().astype(np.uint8)
head = gray > otsu_threshold(gray)
total = float(np.sum(heatmap))
return float(np.mean(heatmap[head])) if total > 0 else float("nan")  # mean heat on the head, not its share""",
                """images = official.test.images
heatmaps = np.concatenate([explain.grad_cam(model, images[i:i + 32]) for i in range(0, len(images), 32)])
head_shares = np.array([heat_on_head(h, image) for h, image in zip(heatmaps, images)])"""],
        "c17": """leaked_paths = set(result.files.loc[result.files["cross_split"], "path"])
frame = predictions.to_frame()
frame["leaked"] = frame["path"].isin(leaked_paths)
by_leak = frame.groupby("true")["correct"].mean().reindex(list(data.CLASS_NAMES)).to_frame("with a copy")
by_leak["without"] = by_leak["with a copy"]  # not split by leak at all""",
    },
    "09_does_it_work_at_another_hospital.ipynb": {
        # copies of a class divided by all of B's images, not by that class's images
        "c07": """copy_share = (cross.files_b.groupby("class")["has_copy"].sum() / len(cross.files_b)).reindex(list(data.CLASS_NAMES))""",
        # the images' labels counted instead of what the model said about them
        "c11": """files = own.files
odd = files[(files["split"] == "Testing") & (files["class"] == "glioma_tumor") & ~files["cross_split"]
            & ((files["width"] != 512) | (files["height"] != 512))]
predicted_as = (official.set_index("path").loc[odd["path"], "true"]
                .value_counts().reindex(list(data.CLASS_NAMES), fill_value=0))""",
    },
}
