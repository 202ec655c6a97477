"""The seeds' examples (shared/seeds/000_*.txt and 002_*.txt), verbatim but for the import line.

Each example is run as written, with `from zeta.ops import` replaced by
`from softmax.ops import`; its printed output is checked against torch.
When the seeds are found beside the repository (../shared/seeds), a test
also checks that the text below is still exactly theirs.
"""

EXAMPLES = [
    r"""import torch

from zeta.ops import norm_exp_softmax

# Input tensor
x = torch.tensor([1.0, 2.0, 3.0])

# Apply norm_exp_softmax without scaling
softmax_probs = norm_exp_softmax(x)

print(softmax_probs)  # Output will be a probability distribution tensor
""",
    r"""import torch

from zeta.ops import norm_exp_softmax

# Input tensor
x = torch.tensor([1.0, 2.0, 3.0])

# Apply norm_exp_softmax with scaling
scale_factor = 0.5
softmax_probs_scaled = norm_exp_softmax(x, scale=scale_factor)

print(
    softmax_probs_scaled
)  # Output will be a softly scaled probability distribution tensor
""",
    r"""import torch

from zeta.ops import norm_exp_softmax

# Input tensor with batch dimension
x = torch.tensor([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])

# Apply norm_exp_softmax with scaling across batched input
scale_factor = 2.0
batch_softmax_probs = norm_exp_softmax(x, scale=scale_factor)

print(batch_softmax_probs)  # Output will be a batch of probability distribution tensors
""",
    r"""import torch

from zeta.ops import logit_scaled_softmax

# Create a tensor of logits
logits = torch.tensor([1.0, 2.0, 3.0])

# Apply logit_scaled_softmax without scaling (default behavior)
softmax_probs = logit_scaled_softmax(logits)
print(softmax_probs)
""",
    r"""import torch

from zeta.ops import logit_scaled_softmax

# Create a tensor of logits
logits = torch.tensor([1.0, 2.0, 3.0])

# Apply logit_scaled_softmax with scaling to increase sharpness
scale = 2.0
sharper_softmax_probs = logit_scaled_softmax(logits, scale)
print(sharper_softmax_probs)
""",
    r"""import torch
import torch.nn as nn

from zeta.ops import logit_scaled_softmax


# Define a simple neural network with logit_scaled_softmax
class SimpleNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)

    def forward(self, x, scale=1.0):
        logits = self.fc(x)
        return logit_scaled_softmax(logits, scale)


# Create a random input tensor
input_tensor = torch.randn(5, 10)

# Instantiate the neural network
model = SimpleNN()

# Forward pass with custom softmax operation
output_probs = model(input_tensor, scale=1.5)
print(output_probs)
""",
]
