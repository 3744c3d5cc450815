"""LIR's trainer: the declared iteration, the content-D update, coupled weight decay, one loss
term against NumPy, and the restorer export (tiny networks, 64 px, CPU). Exact resume is
checked for every trainer in test_trainer_contract.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse import hub
from tfinverse.models.lir import build_lir_networks, scale_outputs
from tfinverse.operators.noise import get_noise
from tfinverse.tasks import lir as settings
from tfinverse.training.lir import CoupledAdam, LIRTrainer, export_restorer, lir_optimizers, pad_to_multiple

BATCH = 2


def tiny(seed=0, noise=True):
    networks = build_lir_networks(1, seed=seed, width=2, dis_width=4, num_res=1)
    trainer = LIRTrainer(networks, noise=get_noise("gaussian", sigma=0.2, clip=True) if noise else None, seed=0)
    trainer.compile(lir_optimizers(1e-3))
    return trainer


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return tuple(tf.constant(rng.random((BATCH, 64, 64, 1)), tf.float32) for _ in range(2))


def factory(epoch):
    rng = np.random.default_rng(11)
    data = tuple(rng.random((6, 64, 64, 1)).astype(np.float32) for _ in range(2))
    return tf.data.Dataset.from_tensor_slices(data).shuffle(6, seed=epoch).batch(BATCH, drop_remainder=True)


def test_one_step_runs_the_declared_phases_in_order():
    trainer = tiny()
    calls = []
    for phase in ("content_discriminator", "image_discriminators", "generators"):
        original = getattr(trainer, f"phase_{phase}")

        def recorder(data, state, _name=phase, _original=original):
            calls.append(_name)
            return _original(data, state)

        setattr(trainer, f"phase_{phase}", recorder)
    logs = trainer.train_step(batch())
    assert calls == ["content_discriminator"] * 3 + ["image_discriminators", "generators"]
    assert trainer.describe_schedule()["updates"] == [
        {"phase": "content_discriminator", "repeat": 3, "fresh_batch": False, "optimizers": ["content"]},
        {"phase": "image_discriminators", "repeat": 1, "fresh_batch": False, "optimizers": ["dis", "content"]},
        {"phase": "generators", "repeat": 1, "fresh_batch": False, "optimizers": ["gen"]},
    ]
    # the content D steps 3 times, then once more inside the image-D update
    assert trainer.optimizer_iterations() == {"content_discriminator": 4, "image_discriminators": 1, "generators": 1}
    assert set(logs) == set(LIRTrainer.metric_names) and all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["g_vgg"]) == 0.0  # no VGG weights: the term is off


def test_content_update_is_clipped_to_norm_5_at_half_the_rate():
    trainer = tiny()
    assert np.isclose(float(trainer.content_optimizer.learning_rate), 0.5e-3)
    assert np.isclose(float(trainer.gen_optimizer.learning_rate), 1e-3)
    # blow the content D's output layer up so that its raw gradient is far above 5
    out = trainer.nets.dis_content.get_layer("dis_content_out")
    kernel, bias = out.get_weights()
    out.set_weights([kernel * 1e4, bias + 100.0])
    seen = []
    apply = trainer.content_optimizer.apply

    def spy(gradients, variables):
        seen.append(float(tf.linalg.global_norm(list(gradients))))
        return apply(gradients, variables)

    trainer.content_optimizer.apply = spy
    trainer.phase_content_discriminator(batch(), {})
    assert seen and abs(seen[0] - settings.CONTENT_GRAD_CLIP_NORM) < 1e-3
    # lr halved every 100k steps, from the step counter
    trainer.step.assign(settings.LR_STEP_SIZE)
    assert np.isclose(float(trainer.learning_rate_factor()), 0.5)
    trainer.step.assign(2 * settings.LR_STEP_SIZE + 5)
    assert np.isclose(float(trainer.learning_rate_factor()), 0.25)


def test_coupled_weight_decay_matches_a_hand_computed_pytorch_adam_step():
    lr, b1, b2, eps, l2 = 0.1, 0.0, 0.9, 1e-8, 0.01
    w0 = np.array([1.0, -2.0, 3.0], np.float32)
    grads = [np.array([0.5, 0.1, -0.3], np.float32), np.array([-0.2, 0.4, 0.0], np.float32)]
    variable = keras.Variable(w0)
    optimizer = CoupledAdam(lr, beta_1=b1, beta_2=b2, epsilon=eps, l2=l2)
    optimizer.build([variable])
    w, m, v = w0.astype(np.float64), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        optimizer.apply([tf.constant(g)], [variable])
        g = g + l2 * w  # coupled: the decay enters the moments
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
        np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5, atol=1e-6)
    # Keras' decoupled AdamW lands elsewhere
    decoupled = keras.Variable(w0)
    adamw = keras.optimizers.AdamW(lr, weight_decay=l2, beta_1=b1, beta_2=b2, epsilon=eps)
    for g in grads:
        adamw.apply([tf.constant(g)], [decoupled])
    assert not np.allclose(decoupled.numpy(), w, atol=1e-4)


def test_generator_terms_match_numpy():
    trainer = tiny(noise=False)
    nets = trainer.nets
    x_a, x_b = batch(3)
    h_a = nets.enc_cont_a(x_a, training=True)
    n1 = tf.random.stateless_normal(tf.concat([tf.shape(h_a)[:-1], [2 * h_a.shape[-1]]], 0), [1, 2])
    n2 = tf.random.stateless_normal(tf.shape(h_a), [3, 4])
    terms = trainer.generator_terms(x_a, x_b, n1, n2)
    # the same forward passes, scored in NumPy (batch-norm in training mode uses batch statistics)
    s_a = nets.enc_noise_a(x_a, training=True)
    h_b = nets.enc_cont_b(x_b, training=True)
    x_a_rec = nets.dec_recs_a(tf.concat([h_a, s_a], -1) + n1, training=True).numpy()
    x_b_rec = nets.dec_cont_b(h_b + n2, training=True).numpy()
    x_ba = nets.dec_recs_a(tf.concat([h_b, s_a], -1) + n1, training=True)
    x_ab = nets.dec_cont_b(h_a + n2, training=True)
    a, b = x_a.numpy(), x_b.numpy()
    recon = 10 * (np.abs(x_a_rec - a).mean() + np.abs(x_b_rec - b).mean())
    kl = 0.01 * sum(np.mean(np.square(c.numpy())) for c in (h_a, h_b, s_a))
    gan = sum(np.mean(np.square(o.numpy() - 1.0)) for o in scale_outputs(nets.dis_a(x_ba, training=True)))
    gan += sum(np.mean(np.square(o.numpy() - 1.0)) for o in scale_outputs(nets.dis_b(x_ab, training=True)))
    content = sum(np.mean(np.square(nets.dis_content(c, training=True).numpy() - 0.5)) for c in (h_a, h_b))
    np.testing.assert_allclose(float(terms["g_recon_x"]), recon, rtol=1e-5)
    np.testing.assert_allclose(float(terms["g_recon_kl"]), kl, rtol=1e-5)
    np.testing.assert_allclose(float(terms["g_gan"]), gan, rtol=1e-5)
    np.testing.assert_allclose(float(terms["g_content"]), content, rtol=1e-5)


def test_noise_is_drawn_per_step_and_reused_within_it():
    trainer = tiny()
    state = {}
    x_a, _ = trainer.domains(batch(), state)
    again, _ = trainer.domains(batch(), state)
    assert x_a is again  # one draw per step, shared by all phases
    trainer.step.assign(1)
    other, _ = trainer.domains(batch(), {})
    assert not np.allclose(x_a.numpy(), other.numpy())
    assert 0.0 <= float(tf.reduce_min(x_a)) and float(tf.reduce_max(x_a)) <= 1.0  # clipped


def test_held_out_evaluation_at_multiples_of_every_and_after_the_last_step():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from tfinverse.training import EpochBatchStream, train

    rng = np.random.default_rng(5)
    clean = [rng.random((30, 41, 1)).astype(np.float32), rng.random((36, 24, 1)).astype(np.float32)]  # any sizes
    noisy = [np.clip(c + 0.2 * rng.standard_normal(c.shape), 0, 1).astype(np.float32) for c in clean]
    trainer = tiny()
    trainer.configure_evaluation(noisy, clean, every=2)

    def eight_bit(a):
        return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)[..., 0]

    def expected_scores(estimates):
        pairs = [(eight_bit(c), eight_bit(e)) for c, e in zip(clean, estimates)]
        return (np.mean([peak_signal_noise_ratio(c, e, data_range=255) for c, e in pairs]),
                np.mean([structural_similarity(c, e, data_range=255, win_size=7) for c, e in pairs]))

    seen = []
    original = trainer.evaluate_held_out

    def recording():
        record = original()
        seen.append((record, expected_scores([trainer.restore_images(n[None])[0] for n in noisy])))
        return record

    trainer.evaluate_held_out = recording
    train(trainer, EpochBatchStream(factory), 3, global_batch_size=BATCH, run_eagerly=True)
    assert [record["step"] for record, _ in seen] == [2, 3]  # before step 3 runs, then after the last
    for record, (psnr, ssim) in seen:
        assert record["psnr"] == pytest.approx(psnr, abs=1e-9) and record["ssim"] == pytest.approx(ssim, abs=1e-9)
    assert trainer.evaluation_history == [record for record, _ in seen]
    assert trainer.dated_scalars() == []  # the loop took every dated scalar off the queue
    with pytest.raises(ValueError, match="every"):
        trainer.configure_evaluation(noisy, clean, every=0)
    with pytest.raises(ValueError, match="matching shapes"):
        trainer.configure_evaluation(noisy, clean[:1], every=1)


def test_noisy_input_scores_are_dated_step_zero_and_written_once():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(6)
    clean = [rng.random((16, 20, 1)).astype(np.float32)]
    noisy = [np.clip(clean[0] + 0.1 * rng.standard_normal(clean[0].shape), 0, 1).astype(np.float32)]
    trainer = tiny()
    trainer.configure_evaluation(noisy, clean, every=1)
    trainer.evaluate_held_out()
    trainer.evaluate_held_out()
    dated = trainer.dated_scalars()
    assert [step for step, _ in dated] == [0, 0, 0]
    assert "eval/psnr_noisy_input" in dated[0][1] and all("eval/psnr_noisy_input" not in d for _, d in dated[1:])
    c8, n8 = (np.round(a * 255).astype(np.uint8)[..., 0] for a in (clean[0], noisy[0]))
    assert dated[0][1]["eval/psnr_noisy_input"] == pytest.approx(peak_signal_noise_ratio(c8, n8, data_range=255), abs=1e-9)


def test_export_pads_crops_clips_and_loads_through_hub(tmp_path):
    trainer = tiny()
    trainer.train_step(batch())
    export_restorer(trainer.nets, tmp_path / "restorer", channels=1, extra_metadata={"noise": "gaussian"})
    restorer = hub.load_restorer(str(tmp_path / "restorer"))
    assert restorer.metadata["extra"]["noise"] == "gaussian" and restorer.metadata["channels"] == 1
    x = np.random.default_rng(0).random((2, 64, 48, 1)).astype(np.float32)
    expected = np.clip(trainer.nets.restore(x).numpy(), 0, 1)
    np.testing.assert_allclose(restorer(x).numpy(), expected, atol=1e-5)
    odd = x[:, :30, :41]  # not multiples of 4: padded inside, cropped back
    out = restorer(odd).numpy()
    assert out.shape == odd.shape and out.min() >= 0 and out.max() <= 1
    padded, _, _ = pad_to_multiple(odd)
    assert tuple(padded.shape[1:3]) == (32, 44)
    np.testing.assert_allclose(out, np.clip(trainer.nets.restore(padded).numpy(), 0, 1)[:, :30, :41], atol=1e-5)
    np.testing.assert_allclose(out, trainer.restore_images(odd), atol=1e-5)


def test_float16_is_refused():
    from tfinverse.utils.precision import precision_policy

    with precision_policy("float16"):
        networks = build_lir_networks(1, seed=0, width=2, dis_width=4, num_res=1)
        with pytest.raises(ValueError, match="bfloat16"):
            LIRTrainer(networks).compile()
